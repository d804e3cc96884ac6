//! Request bodies of the online-order dialects: PHP-style forms
//! (`items[0][name]=…&cashbox_params[AUTH][LOGIN]=…`, brackets plain or
//! percent-encoded, `+` for a space) decoded by `serde_qs` into the same
//! `serde_json::Value` tree a JSON body gives, so one parser reads both.
//! Every leaf of a form is a string; the dialect parsers accept numbers as
//! JSON numbers or decimal strings alike.

use super::body;
use super::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// Deepest nesting a form key may have (`items[0][discount][discount]` is 3).
pub const MAX_FORM_DEPTH: usize = 5;

/// The kind of body a request declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Form,
    Json,
}

/// Decode a PHP-style form body into a JSON tree (pure).
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    serde_qs::Config::new()
        .max_depth(MAX_FORM_DEPTH)
        .use_form_encoding(true)
        .deserialize_bytes::<Value>(bytes)
        .map_err(|e| format!("the form body cannot be read: {e}"))
}

fn kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        Ok(BodyKind::Json)
    } else if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") || mime.is_empty() {
        Ok(BodyKind::Form)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the body as application/x-www-form-urlencoded or application/json (got {content_type:?})"
            ),
        ))
    }
}

/// Read a form or JSON body under the API's size and time limits.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    let kind = kind(headers)?;
    let bytes = body::read_bytes(headers, body, limit).await?;
    match kind {
        BodyKind::Json => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )
        }),
        BodyKind::Form => {
            decode(&bytes).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "malformed_form", m))
        }
    }
}

/// A flat form (no nesting) as field → value; a field given twice or nested
/// is an error naming it.
pub fn flat(v: &Value) -> Result<std::collections::BTreeMap<String, String>, String> {
    let Some(map) = v.as_object() else {
        return Err("the body must be a form of fields".into());
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            Value::Array(_) => return Err(format!("field {k} is given more than once")),
            Value::Object(_) => return Err(format!("field {k} must be a plain value")),
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn php_forms_with_plain_or_encoded_brackets_read_as_json() {
        let encoded = "items%5B0%5D%5Bname%5D=Tea+cup&items%5B1%5D%5Bname%5D=x\
                       &cashbox_params%5BAUTH%5D%5BLOGIN%5D=a%2Bb&uuid=check%7Cshop%7C1";
        assert_eq!(
            decode(encoded.as_bytes()).unwrap(),
            json!({"items": [{"name": "Tea cup"}, {"name": "x"}],
                   "cashbox_params": {"AUTH": {"LOGIN": "a+b"}}, "uuid": "check|shop|1"})
        );
        let plain = "items[0][name]=Tea cup&cashbox_params[AUTH][PASSWORD]=p";
        assert_eq!(
            decode(plain.as_bytes()).unwrap(),
            json!({"items": [{"name": "Tea cup"}], "cashbox_params": {"AUTH": {"PASSWORD": "p"}}})
        );
    }

    #[test]
    fn a_flat_form_refuses_repeated_and_nested_fields() {
        assert_eq!(
            flat(&decode(b"a=1&b=x+y").unwrap()).unwrap(),
            [("a".into(), "1".into()), ("b".into(), "x y".into())].into()
        );
        assert!(
            flat(&decode(b"a=1&a=2").unwrap())
                .unwrap_err()
                .contains("a is given more than once")
        );
        assert!(
            flat(&decode(b"a[b]=1").unwrap())
                .unwrap_err()
                .contains("field a")
        );
    }
}
