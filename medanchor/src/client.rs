//! A small client of the medanchor API for the commands (`share`, `demo`,
//! the API bench): sign-in as Stacks wallets do, and JSON requests whose
//! problem answers become errors with the server's message.

use anyhow::Context;
use medanchor_wallet::keys::StacksKey;
use serde_json::Value;

/// Signs in to the API at `api` with `key`; returns the session token.
pub async fn sign_in(http: &reqwest::Client, api: &str, key: &StacksKey) -> anyhow::Result<String> {
    Ok(medanchor_wallet::sign_in(http, api, key).await?)
}

/// A signed-in session.
pub struct Session {
    http: reqwest::Client,
    api: String,
    token: String,
}

/// An answer: status and JSON body (`Null` when not JSON).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The body when 2xx, else an error carrying the problem's detail.
    pub fn ok(self) -> anyhow::Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let detail = self.body["detail"].as_str().map_or_else(|| self.body.to_string(), str::to_string);
        // (A wrong code's detail already says how many attempts are left.)
        let mut msg = format!("HTTP {}: {detail}", self.status);
        if let Some(s) = self.body["retry_after"].as_u64() {
            msg.push_str(&format!(" (retry after {s} s)"));
        }
        Err(anyhow::anyhow!(msg))
    }
}

impl Session {
    /// Signs in to `api` with `key`.
    pub async fn open(api: &str, key: &StacksKey) -> anyhow::Result<Session> {
        let http = reqwest::Client::new();
        let api = api.trim().trim_end_matches('/').to_string();
        let token = sign_in(&http, &api, key).await?;
        Ok(Session { http, api, token })
    }

    /// Sends a request (`GET` without a body, `POST` with one) with extra
    /// headers.
    pub async fn send(&self, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.api);
        let mut r = match body {
            Some(b) => self.http.post(url).json(b),
            None => self.http.get(url),
        }
        .bearer_auth(&self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.with_context(|| format!("reaching the API at {}", self.api))?;
        let status = r.status().as_u16();
        Ok(Answer { status, body: r.json().await.unwrap_or(Value::Null) })
    }
}

/// Unix milliseconds as UTC, `2026-11-22 14:05:09 UTC` (for people; JSON
/// output keeps the number).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        for (ms, text) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400_000, "2000-02-29 00:00:00 UTC"),
            (1_795_371_673_531, "2026-11-22 18:21:13 UTC"),
            (4_102_444_799_000, "2099-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(super::utc(ms), text, "{ms}");
        }
    }
}
