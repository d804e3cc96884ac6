//! Reading a request body under the API's rules: a content type the dialect
//! takes (415), a size limit (413), a time limit (408), and a well-formed body
//! (400). Two formats: JSON, and `application/x-www-form-urlencoded` with
//! PHP-style nested keys (`items[0][name]=Tea`), both read into one JSON value
//! so a dialect's parser sees one tree. A dialect says which formats it takes.

use super::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value};
use std::time::Duration;

/// How long a client may take to send its body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deepest nesting of form keys (`a[b][c][d]`…).
pub const FORM_MAX_DEPTH: usize = 6;

/// A body format a dialect takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Form,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// Read a JSON body (the native dialect's only format).
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    read(headers, body, limit, &[Format::Json]).await
}

/// Read a body in one of `formats` into a JSON value.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    formats: &[Format],
) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let Some(format) = formats
        .iter()
        .copied()
        .find(|f| mime.eq_ignore_ascii_case(f.mime()))
    else {
        let wanted: Vec<&str> = formats.iter().map(|f| f.mime()).collect();
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the body as Content-Type: {} (got {:?})",
                wanted.join(" or "),
                if content_type.is_empty() {
                    "nothing"
                } else {
                    content_type
                }
            ),
        ));
    };
    let bytes = read_bytes(headers, body, limit).await?;
    match format {
        Format::Json => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        }),
        Format::Form => parse_form(&bytes),
    }
}

/// The body's bytes, within `limit` and [`BODY_READ_TIMEOUT`].
pub async fn read_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {limit} bytes (api.max_body_bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body did not arrive in time",
            )
        })?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("the body could not be read: {e}"),
        )),
    }
}

/// `a[0][b]=1&a[1][b]=2&c=x` → `{"a": [{"b": "1"}, {"b": "2"}], "c": "x"}`.
/// Every leaf is a string; a map whose keys are exactly `0..n` becomes an
/// array (in index order).
pub fn parse_form(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_qs::Config::new()
        .max_depth(FORM_MAX_DEPTH)
        .use_form_encoding(true)
        .deserialize_bytes(bytes)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_form",
                format!("the body is not a valid form (key[0][field]=value&…): {e}"),
            )
        })?;
    Ok(arrays_from_indexes(value))
}

fn arrays_from_indexes(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let n = map.len();
            let indexed: Option<Vec<usize>> = map
                .keys()
                .map(|k| {
                    k.parse::<usize>()
                        .ok()
                        .filter(|i| *i < n && k == &i.to_string())
                })
                .collect();
            match indexed {
                Some(idx)
                    if n > 0 && {
                        let mut s = idx.clone();
                        s.sort_unstable();
                        s.dedup();
                        s.len() == n
                    } =>
                {
                    let mut items: Vec<(usize, Value)> = idx
                        .into_iter()
                        .zip(map.into_iter().map(|(_, v)| arrays_from_indexes(v)))
                        .collect();
                    items.sort_by_key(|(i, _)| *i);
                    Value::Array(items.into_iter().map(|(_, v)| v).collect())
                }
                _ => Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, arrays_from_indexes(v)))
                        .collect::<Map<_, _>>(),
                ),
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(arrays_from_indexes).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn php_style_nested_keys_become_objects_and_arrays() {
        let v = parse_form(
            b"items%5B1%5D%5Bname%5D=Bun&items%5B0%5D%5Bname%5D=Tea+black&items[0][price]=1.50&total=2.00&meta[a]=x",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "items": [{"name": "Tea black", "price": "1.50"}, {"name": "Bun"}],
                "total": "2.00",
                "meta": {"a": "x"},
            })
        );
    }

    #[test]
    fn a_gap_in_the_indexes_is_a_malformed_form() {
        let e = parse_form(b"a[0]=x&a[2]=y").unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "malformed_form")
        );
    }
}
