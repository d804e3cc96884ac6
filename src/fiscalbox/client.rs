//! The HTTP client of a FiscalBox: one call per endpoint, every call bounded
//! by the connect and request time limits, replies read in either envelope
//! shape ([`facts::Envelope::parse`]). Failures are sorted by what the caller
//! should do ([`CallError`]).

use super::facts::{
    self, Endpoint, ErrorBody, FiscalData, Info, LastOrder, Method, OrderRequest, ZReport,
};
use serde_json::Value;
use std::time::Duration;

/// Why a call did not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No reply: could not connect, timed out, or the connection dropped.
    /// The operation may or may not have been done.
    #[error("FiscalBox unreachable: {0}")]
    Unreachable(String),
    /// The box answered with an error envelope.
    #[error("FiscalBox error {}: {}", .0.code, .0.message)]
    Box(ErrorBody),
    /// The box answered something that is not its envelope.
    #[error("FiscalBox reply not understood: {0}")]
    Malformed(String),
}

#[derive(Clone, Debug)]
pub struct BoxClient {
    http: reqwest::Client,
    base: String,
}

impl BoxClient {
    pub fn new(
        base: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<BoxClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the FiscalBox HTTP client: {e}"))?;
        Ok(BoxClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Call `endpoint` (its path with the trailing slash, as the docs write
    /// it) with an optional JSON body and query; `Ok(data)` on success.
    pub async fn call(
        &self,
        endpoint: Endpoint,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Result<Value, CallError> {
        let mut url = format!("{}{}/", self.base, endpoint.path());
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        let request = match endpoint.method() {
            Method::Get => self.http.get(&url),
            Method::Post => self
                .http
                .post(&url)
                .json(body.unwrap_or(&Value::Object(Default::default()))),
        };
        let reply = request
            .send()
            .await
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let status = reply.status();
        let bytes = reply
            .bytes()
            .await
            .map_err(|e| CallError::Unreachable(format!("reply cut off: {e}")))?;
        if !status.is_success() {
            return Err(CallError::Malformed(format!("HTTP {status}")));
        }
        let env = facts::Envelope::parse(&bytes).map_err(CallError::Malformed)?;
        env.into_result().map_err(CallError::Box)
    }

    fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, CallError> {
        serde_json::from_value(v).map_err(|e| CallError::Malformed(e.to_string()))
    }

    pub async fn order(&self, req: &OrderRequest, refund: bool) -> Result<FiscalData, CallError> {
        let body = serde_json::to_value(req).expect("an order serializes");
        let endpoint = if refund {
            Endpoint::OrderRefuse
        } else {
            Endpoint::OrderCreate
        };
        Self::typed(self.call(endpoint, Some(&body), &[]).await?)
    }

    /// `None` before the box's first receipt.
    pub async fn last_order(&self) -> Result<Option<LastOrder>, CallError> {
        match self.call(Endpoint::OrderLast, None, &[]).await? {
            Value::Null => Ok(None),
            v => Self::typed(v).map(Some),
        }
    }

    pub async fn info(&self) -> Result<Info, CallError> {
        Self::typed(self.call(Endpoint::Info, None, &[]).await?)
    }

    pub async fn open_shift(&self, time: &str) -> Result<Value, CallError> {
        self.call(Endpoint::ZReportOpen, None, &[("time", time)])
            .await
    }

    pub async fn close_shift(&self, time: &str) -> Result<ZReport, CallError> {
        Self::typed(
            self.call(Endpoint::ZReportClose, None, &[("time", time)])
                .await?,
        )
    }

    pub async fn zreport_info(&self) -> Result<ZReport, CallError> {
        Self::typed(self.call(Endpoint::ZReportInfo, None, &[]).await?)
    }
}

/// Percent-encode a query component (RFC 3986 unreserved characters pass).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
