//! Rate limits on redemption attempts: per client IP, per signed-in
//! principal and for the whole node, as token buckets. They bound how fast
//! anyone can guess across many patients (the per-code and per-patient
//! caps in [`super::store`] bound guesses against one patient, for ever).
//! In memory on purpose: they limit rate, not lifetime totals, and a
//! restart refills them no more than waiting would.

use std::collections::HashMap;
use std::sync::Mutex;

/// One bucket's shape: `burst` attempts at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Capacity.
    pub burst: u32,
    /// Refill per minute.
    pub per_minute: u32,
}

/// The three limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client IP.
    pub per_ip: Rate,
    /// Per signed-in principal.
    pub per_principal: Rate,
    /// For the whole node.
    pub global: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip: Rate { burst: 10, per_minute: 10 },
            per_principal: Rate { burst: 10, per_minute: 10 },
            global: Rate { burst: 200, per_minute: 3_000 },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    fn refill(&mut self, rate: Rate, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        self.tokens = (self.tokens + elapsed * f64::from(rate.per_minute) / 60_000.0).min(f64::from(rate.burst));
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// Milliseconds until one token is available (0 if one is).
    fn wait_ms(&self, rate: Rate) -> u64 {
        if self.tokens >= 1.0 {
            0
        } else if rate.per_minute == 0 {
            u64::MAX
        } else {
            ((1.0 - self.tokens) * 60_000.0 / f64::from(rate.per_minute)).ceil() as u64
        }
    }
}

/// Keys remembered per map before full (idle) buckets are forgotten.
const MAX_KEYS: usize = 100_000;

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client IP's.
    Ip,
    /// The principal's.
    Principal,
    /// The node's.
    Global,
}

impl Scope {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Ip => "this client address",
            Scope::Principal => "this account",
            Scope::Global => "this node",
        }
    }
}

/// The limiter.
#[derive(Debug)]
pub struct Limiter {
    limits: RateLimits,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    ips: HashMap<String, Bucket>,
    principals: HashMap<String, Bucket>,
    global: Option<Bucket>,
}

fn bucket<'a>(map: &'a mut HashMap<String, Bucket>, key: &str, rate: Rate, now_ms: u64) -> &'a mut Bucket {
    if map.len() >= MAX_KEYS && !map.contains_key(key) {
        // Forget buckets that have refilled: they hold no information.
        map.retain(|_, b| {
            let mut b = *b;
            b.refill(rate, now_ms);
            b.tokens < f64::from(rate.burst)
        });
        // Still full: whoever can present this many distinct keys at once
        // gains nothing from their buckets; start over rather than scan on
        // every new key (the scan stays amortized O(1)).
        if map.len() >= MAX_KEYS / 2 {
            map.clear();
        }
    }
    let b = map.entry(key.to_string()).or_insert(Bucket { tokens: f64::from(rate.burst), at_ms: now_ms });
    b.refill(rate, now_ms);
    b
}

impl Limiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter { limits, state: Mutex::default() }
    }

    /// Takes one attempt from all three buckets, or none: `Err` names the
    /// limit that refused and how long until it would allow one (ms). An
    /// IPv6 client is limited by its /64 (one host's usual allocation).
    pub fn attempt(&self, ip: Option<&str>, principal: &str, now_ms: u64) -> Result<(), (Scope, u64)> {
        let network = ip.map(ip_key);
        let ip = network.as_deref();
        let l = self.limits;
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let global = st.global.get_or_insert(Bucket { tokens: f64::from(l.global.burst), at_ms: now_ms });
        global.refill(l.global, now_ms);
        let g_wait = global.wait_ms(l.global);
        let p_wait = bucket(&mut st.principals, principal, l.per_principal, now_ms).wait_ms(l.per_principal);
        let i_wait = match ip {
            Some(ip) => bucket(&mut st.ips, ip, l.per_ip, now_ms).wait_ms(l.per_ip),
            None => 0,
        };
        let refused = [(Scope::Ip, i_wait), (Scope::Principal, p_wait), (Scope::Global, g_wait)]
            .into_iter()
            .filter(|(_, w)| *w > 0)
            .max_by_key(|(_, w)| *w);
        if let Some(r) = refused {
            return Err(r);
        }
        if let Some(g) = st.global.as_mut() {
            g.tokens -= 1.0;
        }
        if let Some(b) = st.principals.get_mut(principal) {
            b.tokens -= 1.0;
        }
        if let Some(b) = ip.and_then(|ip| st.ips.get_mut(ip)) {
            b.tokens -= 1.0;
        }
        Ok(())
    }
}

/// The per-IP key: the address, or an IPv6 address's /64.
fn ip_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or_else(|| ip.to_string(), |v4| v4.to_string()),
        _ => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Rate = Rate { burst: 3, per_minute: 6 };
    const OPEN: Rate = Rate { burst: 1_000, per_minute: 60_000 };

    #[test]
    fn each_limit_refuses_with_the_wait_then_refills() {
        // (limits, attempts as (ip, principal), which attempt is refused, by whom)
        let cases = [
            (RateLimits { per_ip: SLOW, per_principal: OPEN, global: OPEN }, [("a", "p"), ("a", "q")], Scope::Ip),
            (
                RateLimits { per_ip: OPEN, per_principal: SLOW, global: OPEN },
                [("a", "p"), ("b", "p")],
                Scope::Principal,
            ),
            (RateLimits { per_ip: OPEN, per_principal: OPEN, global: SLOW }, [("a", "p"), ("b", "q")], Scope::Global),
        ];
        for (limits, who, scope) in cases {
            let l = Limiter::new(limits);
            for i in 0..3 {
                let (ip, p) = who[i % 2];
                assert_eq!(l.attempt(Some(ip), p, 0), Ok(()), "{scope:?} attempt {i}");
            }
            // Same IP (a) and principal (p) as the first attempts: refused;
            // one token takes 10 s at 6 a minute.
            let refused = match scope {
                Scope::Ip => l.attempt(Some("a"), "fresh", 0),
                Scope::Principal => l.attempt(Some("fresh"), "p", 0),
                Scope::Global => l.attempt(Some("fresh"), "fresh", 0),
            };
            assert_eq!(refused, Err((scope, 10_000)), "{scope:?}");
            assert_eq!(l.attempt(Some("a"), "p", 9_000).map_err(|e| e.0), Err(scope));
            assert_eq!(l.attempt(Some("a"), "p", 10_000), Ok(()), "{scope:?} refilled");
        }
    }

    #[test]
    fn a_refused_attempt_takes_no_token_from_the_other_limits() {
        let l = Limiter::new(RateLimits { per_ip: SLOW, per_principal: SLOW, global: OPEN });
        for _ in 0..3 {
            l.attempt(Some("a"), "p", 0).expect("allowed");
        }
        // IP "a" is spent: principal "q" must not pay for the refusal.
        assert!(l.attempt(Some("a"), "q", 0).is_err());
        for _ in 0..3 {
            l.attempt(Some("b"), "q", 0).expect("q still has its burst");
        }
    }

    #[test]
    fn an_ipv6_network_shares_one_bucket() {
        let l = Limiter::new(RateLimits { per_ip: SLOW, per_principal: OPEN, global: OPEN });
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8:0:0:ffff::3"] {
            l.attempt(Some(host), "p", 0).expect("within the /64's burst");
        }
        assert!(l.attempt(Some("2001:db8::4"), "p", 0).is_err(), "same /64");
        l.attempt(Some("2001:db8:0:1::1"), "p", 0).expect("another /64");
        assert_eq!(ip_key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(ip_key("10.0.0.1"), "10.0.0.1");
    }
}
