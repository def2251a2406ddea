//! A bucket's lifecycle configuration on S3: one rule per tenant prefix
//! (move objects to an archive class after N days, abort multipart
//! uploads left incomplete after M days), applied with
//! `PutBucketLifecycleConfiguration` and read back with
//! `GetBucketLifecycleConfiguration`.
//!
//! `object_store` has no bucket-level calls, so these two requests are
//! signed here with AWS Signature Version 4 (checked against AWS's
//! published example and, in the tests, by a real S3 server that verifies
//! signatures).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::backend::StorageError;

/// One tenant's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's id (`tenant-{tenant}`).
    pub id: String,
    /// The key prefix it covers (`{tenant}/`).
    pub prefix: String,
    /// Days after creation when objects move to `archive_class`.
    pub archive_after_days: u32,
    /// The archive storage class (e.g. `GLACIER`).
    pub archive_class: String,
    /// Days after which an incomplete multipart upload is aborted.
    pub abort_multipart_after_days: u32,
}

impl Rule {
    /// The rule of `tenant`'s prefix.
    pub fn for_tenant(
        tenant: &crate::keys::Tenant,
        archive_after_days: u32,
        archive_class: &str,
        abort_days: u32,
    ) -> Rule {
        Rule {
            id: format!("tenant-{}", tenant.as_str()),
            prefix: tenant.prefix(),
            archive_after_days,
            archive_class: archive_class.to_string(),
            abort_multipart_after_days: abort_days,
        }
    }
}

/// Where the bucket is and who signs.
#[derive(Clone)]
pub struct S3Target {
    /// `http://127.0.0.1:8333` for a local server (path-style); `None`:
    /// AWS itself (`https://s3.{region}.amazonaws.com`, path-style).
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
    /// A session token (temporary credentials).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credential material in logs.
        f.debug_struct("S3Target").field("endpoint", &self.endpoint).field("bucket", &self.bucket).finish()
    }
}

impl S3Target {
    /// The target with credentials from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    pub fn from_env(endpoint: Option<String>, bucket: &str, region: &str) -> Result<S3Target, StorageError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(access_key), Some(secret_key)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
            return Err(StorageError::Config("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()));
        };
        Ok(S3Target {
            endpoint,
            bucket: bucket.into(),
            region: region.into(),
            access_key,
            secret_key,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }

    fn base(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// The `LifecycleConfiguration` document of `rules`.
pub fn lifecycle_xml(rules: &[Rule]) -> String {
    let mut x = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    x.push_str(r#"<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
    for r in rules {
        // Ids, prefixes and classes are checked names (no markup in them);
        // escaped anyway.
        x.push_str(&format!(
            "<Rule><ID>{}</ID><Filter><Prefix>{}</Prefix></Filter><Status>Enabled</Status>\
             <Transition><Days>{}</Days><StorageClass>{}</StorageClass></Transition>\
             <AbortIncompleteMultipartUpload><DaysAfterInitiation>{}</DaysAfterInitiation></AbortIncompleteMultipartUpload>\
             </Rule>",
            escape(&r.id),
            escape(&r.prefix),
            r.archive_after_days,
            escape(&r.archive_class),
            r.abort_multipart_after_days
        ));
    }
    x.push_str("</LifecycleConfiguration>");
    x
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The rules of a `LifecycleConfiguration` document (the parts this
/// module writes; a rule without a transition or an abort reads as 0 days).
pub fn parse_lifecycle(xml: &str) -> Result<Vec<Rule>, StorageError> {
    let bad = |what: &str| StorageError::Store(format!("the bucket's lifecycle document: {what}"));
    if !xml.contains("<LifecycleConfiguration") {
        return Err(bad("no LifecycleConfiguration"));
    }
    let mut rules = Vec::new();
    for block in blocks(xml, "Rule") {
        let days = |outer: &str, inner: &str| -> Result<u32, StorageError> {
            match blocks(block, outer).first().and_then(|b| blocks(b, inner).first().copied()) {
                Some(d) => d.trim().parse().map_err(|_| bad("a day count is not a number")),
                None => Ok(0),
            }
        };
        let prefix = blocks(block, "Filter")
            .first()
            .and_then(|f| blocks(f, "Prefix").first().copied())
            .or_else(|| blocks(block, "Prefix").first().copied())
            .unwrap_or("");
        rules.push(Rule {
            id: blocks(block, "ID").first().copied().unwrap_or("").to_string(),
            prefix: prefix.to_string(),
            archive_after_days: days("Transition", "Days")?,
            archive_class: blocks(block, "Transition")
                .first()
                .and_then(|t| blocks(t, "StorageClass").first().copied())
                .unwrap_or("")
                .to_string(),
            abort_multipart_after_days: days("AbortIncompleteMultipartUpload", "DaysAfterInitiation")?,
        });
    }
    Ok(rules)
}

/// The contents of every `<tag>…</tag>` (or `<tag attr…>…</tag>`) in
/// `xml`, outermost first, not nested in one another.
fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        // `<Rule>` but not `<Rules>`.
        let Some(gt) = after.find('>') else { break };
        if !(after.starts_with('>') || after.starts_with(' ')) {
            rest = after;
            continue;
        }
        let body = &after[gt + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// Applies `rules` as the bucket's whole lifecycle configuration.
pub async fn put_lifecycle(target: &S3Target, rules: &[Rule]) -> Result<(), StorageError> {
    let body = lifecycle_xml(rules);
    use base64::Engine;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()));
    let response = send(target, reqwest::Method::PUT, body.into_bytes(), &[("content-md5", md5)]).await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(StorageError::Store(format!("PutBucketLifecycleConfiguration: HTTP {status}: {}", excerpt(&text))));
    }
    Ok(())
}

/// The bucket's lifecycle rules (none when it has no configuration).
pub async fn get_lifecycle(target: &S3Target) -> Result<Vec<Rule>, StorageError> {
    let response = send(target, reqwest::Method::GET, Vec::new(), &[]).await?;
    let status = response.status();
    let text = response.text().await.map_err(|e| StorageError::Store(e.to_string()))?;
    if status == reqwest::StatusCode::NOT_FOUND && text.contains("NoSuchLifecycleConfiguration") {
        return Ok(Vec::new());
    }
    if !status.is_success() {
        return Err(StorageError::Store(format!("GetBucketLifecycleConfiguration: HTTP {status}: {}", excerpt(&text))));
    }
    parse_lifecycle(&text)
}

fn excerpt(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Sends a signed `?lifecycle` request on the bucket.
async fn send(
    target: &S3Target,
    method: reqwest::Method,
    body: Vec<u8>,
    extra: &[(&str, String)],
) -> Result<reqwest::Response, StorageError> {
    let url = format!("{}/{}?lifecycle", target.base(), target.bucket);
    let parsed = reqwest::Url::parse(&url).map_err(|e| StorageError::Config(format!("{url}: {e}")))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(StorageError::Config(format!("{url}: no host"))),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let amz_date = amz_date(now);
    let payload_hash = hex(&Sha256::digest(&body));
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("x-amz-content-sha256".into(), payload_hash.clone()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    if let Some(t) = &target.session_token {
        headers.push(("x-amz-security-token".into(), t.clone()));
    }
    for (k, v) in extra {
        headers.push((k.to_string(), v.clone()));
    }
    headers.sort();
    let path = format!("/{}", target.bucket);
    let authorization = authorization(target, method.as_str(), &path, "lifecycle=", &headers, &payload_hash, &amz_date);
    let mut request = reqwest::Client::new().request(method, parsed).body(body);
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        request = request.header(k, v);
    }
    request.header("authorization", authorization).send().await.map_err(|e| StorageError::Store(format!("{url}: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `YYYYMMDDTHHMMSSZ` of a unix time.
fn amz_date(unix_s: u64) -> String {
    let (y, m, d) = crate::keys::civil_from_days((unix_s / 86_400) as i64);
    let s = unix_s % 86_400;
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// The SigV4 `Authorization` header of a request: `headers` sorted by
/// (lowercase) name, all signed; `query` already canonical.
fn authorization(
    target: &S3Target,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
    amz_date: &str,
) -> String {
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_hash}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", target.region);
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let key = hmac(format!("AWS4{}", target.secret_key).as_bytes(), date.as_bytes());
    let key = hmac(&key, target.region.as_bytes());
    let key = hmac(&key, b"s3");
    let key = hmac(&key, b"aws4_request");
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}", target.access_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example "GET Bucket Lifecycle" (Signature Version
    /// 4, Authorization header, examplebucket, 2013-05-24).
    #[test]
    fn signs_as_aws_documents() {
        let target = S3Target {
            endpoint: None,
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = vec![
            ("host".to_string(), "examplebucket.s3.amazonaws.com".to_string()),
            ("x-amz-content-sha256".to_string(), empty.to_string()),
            ("x-amz-date".to_string(), "20130524T000000Z".to_string()),
        ];
        let auth = authorization(&target, "GET", "/", "lifecycle=", &headers, empty, "20130524T000000Z");
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert!(!format!("{target:?}").contains("EXAMPLEKEY"), "no secret in Debug");
    }

    #[test]
    fn documents_round_trip() {
        let t = |s: &str| s.parse::<crate::keys::Tenant>().unwrap_or_else(|e| panic!("{e}"));
        let rules = vec![
            Rule::for_tenant(&t("default"), 90, "GLACIER", 7),
            Rule::for_tenant(&t("north"), 30, "DEEP_ARCHIVE", 2),
        ];
        let xml = lifecycle_xml(&rules);
        assert_eq!(parse_lifecycle(&xml).expect("parses"), rules);
        assert_eq!(rules[1].prefix, "north/");
        // What servers send back: namespaces, other elements, whitespace.
        let served = r#"<?xml version="1.0"?><LifecycleConfiguration xmlns="x"><Rules/><Rule>
            <ID>a</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status>
            <Transition><Days> 9 </Days><StorageClass>GLACIER</StorageClass></Transition></Rule></LifecycleConfiguration>"#;
        let parsed = parse_lifecycle(served).expect("parses");
        assert_eq!(parsed.len(), 1);
        assert_eq!((parsed[0].archive_after_days, parsed[0].abort_multipart_after_days), (9, 0));
        assert!(parse_lifecycle("<Error/>").is_err());
        assert!(parse_lifecycle(
            "<LifecycleConfiguration><Rule><Transition><Days>x</Days></Transition></Rule></LifecycleConfiguration>"
        )
        .is_err());
    }
}
