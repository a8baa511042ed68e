//! Where a bucket is and how to reach it.

use std::io;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct S3Config {
    /// `s3://bucket` or `s3://bucket/prefix`: the root the names are relative to.
    pub url: String,
    /// `http(s)://host:port` of an S3-compatible server (Garage, MinIO, radosgw, AWS).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain HTTP to the endpoint (a server on loopback); HTTPS otherwise.
    pub allow_http: bool,
    /// How long one request may take, connection included: a caller waits at most this.
    pub request_timeout: Duration,
    /// Bytes appended and not yet sealed, at most (appends beyond it fail).
    pub max_buffered_bytes: usize,
}

impl S3Config {
    /// The defaults for the bounds; the caller names the bucket and the credentials.
    pub fn new(
        url: &str,
        endpoint: &str,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Self {
        S3Config {
            url: url.to_owned(),
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            allow_http: false,
            request_timeout: Duration::from_secs(10),
            max_buffered_bytes: 64 << 20,
        }
    }

    /// The bucket and the key prefix (without a trailing `/`, empty for the bucket's root).
    pub fn bucket_and_prefix(&self) -> io::Result<(String, String)> {
        let rest = (self.url.strip_prefix("s3://")).ok_or_else(|| invalid(&self.url))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if bucket.is_empty() || (!prefix.is_empty() && crate::name::check(prefix).is_err()) {
            return Err(invalid(&self.url));
        }
        Ok((bucket.to_owned(), prefix.to_owned()))
    }
}

fn invalid(url: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid media URL {url:?}: expected s3://bucket or s3://bucket/prefix"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> S3Config {
        S3Config::new(url, "http://127.0.0.1:1", "garage", "id", "secret")
    }

    #[test]
    fn urls() {
        let parts = |url| config(url).bucket_and_prefix().unwrap();
        assert_eq!(parts("s3://media"), ("media".into(), "".into()));
        assert_eq!(parts("s3://media/"), ("media".into(), "".into()));
        assert_eq!(parts("s3://media/a/b/"), ("media".into(), "a/b".into()));
        for bad in ["media/a", "s3:///a", "http://media", "s3://media/a//b"] {
            let e = config(bad).bucket_and_prefix().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
