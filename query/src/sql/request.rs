//! The body of `POST /druid/v2/sql` as Druid documents it, and its dynamic parameters turned into
//! DataFusion literals.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use common::time::TimestampFormat;
use datafusion::common::ScalarValue;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::error::{QueryError, invalid};

/// A Druid SQL request. Fields braid does not use (`batchSize`, ...) are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlRequest {
    /// The SQL text: one SELECT statement.
    pub query: String,
    /// How rows are written; Druid's default is `object`.
    #[serde(default)]
    pub result_format: ResultFormat,
    /// Write the column names as the first row.
    #[serde(default)]
    pub header: bool,
    /// With `header`: also write each column's native Druid type (LONG, STRING, ...).
    #[serde(default)]
    pub types_header: bool,
    /// With `header`: also write each column's SQL type (BIGINT, VARCHAR, TIMESTAMP, ...).
    #[serde(default)]
    pub sql_types_header: bool,
    /// Druid SQL query context (`sqlQueryId`, `sqlTimeZone`, ...).
    #[serde(default)]
    pub context: serde_json::Map<String, Value>,
    /// Values for the `?` placeholders, in order.
    #[serde(default)]
    pub parameters: Vec<SqlParameter>,
}

impl SqlRequest {
    /// A request with Druid's defaults for everything but the SQL text.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            result_format: ResultFormat::default(),
            header: false,
            types_header: false,
            sql_types_header: false,
            context: serde_json::Map::new(),
            parameters: Vec::new(),
        }
    }

    /// Reads a JSON request body; a malformed body is [`QueryError::InvalidInput`] naming the
    /// problem (unknown `resultFormat`, missing `query`, ...).
    pub fn from_json(body: &[u8]) -> Result<Self, QueryError> {
        serde_json::from_slice(body).map_err(|e| invalid!("invalid SQL request body: {e}"))
    }
}

/// Druid's SQL result formats (`resultFormat`), matched case-insensitively as Druid does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultFormat {
    /// A JSON array of JSON objects (the default).
    #[default]
    Object,
    /// A JSON array of JSON arrays.
    Array,
    /// One JSON object per line, then a blank line.
    ObjectLines,
    /// One JSON array per line, then a blank line.
    ArrayLines,
    /// Comma-separated values, one row per line, then a blank line.
    Csv,
}

impl ResultFormat {
    /// Every format, in Druid's documentation order.
    pub const ALL: [ResultFormat; 5] =
        [Self::Object, Self::Array, Self::ObjectLines, Self::ArrayLines, Self::Csv];

    /// The name Druid uses in `resultFormat`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Array => "array",
            Self::ObjectLines => "objectLines",
            Self::ArrayLines => "arrayLines",
            Self::Csv => "csv",
        }
    }

    /// The response `Content-Type` Druid sends for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Object | Self::Array => "application/json",
            Self::ObjectLines | Self::ArrayLines => "text/plain",
            Self::Csv => "text/csv",
        }
    }

    /// Parses a `resultFormat` value; an unknown name is an error listing the valid ones.
    pub fn parse(name: &str) -> Result<Self, QueryError> {
        Self::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            invalid!(
                "\"resultFormat\": unknown result format \"{name}\" (expected one of: {})",
                names.join(", ")
            )
        })
    }
}

impl fmt::Display for ResultFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ResultFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).map_err(de::Error::custom)
    }
}

impl Serialize for ResultFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One dynamic parameter: `{"type": "VARCHAR", "value": "en"}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SqlParameter {
    /// The SQL type name (VARCHAR, BIGINT, DOUBLE, TIMESTAMP, ARRAY, ...).
    #[serde(rename = "type")]
    pub type_name: String,
    /// The value; `null` binds a typed NULL.
    #[serde(default)]
    pub value: Value,
}

/// The SQL type names a parameter may declare.
const PARAMETER_TYPES: &[&str] = &[
    "VARCHAR",
    "CHAR",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "FLOAT",
    "REAL",
    "DOUBLE",
    "DECIMAL",
    "NUMERIC",
    "BOOLEAN",
    "TIMESTAMP",
    "DATE",
    "ARRAY",
];

impl SqlParameter {
    /// The DataFusion literal for this parameter; `position` (1-based) names it in errors.
    pub(crate) fn to_scalar(&self, position: usize) -> Result<ScalarValue, QueryError> {
        let type_name = self.type_name.to_ascii_uppercase();
        let fail = |rule: &str| {
            invalid!(
                "\"parameters\"[{}] (type {}): value {} {rule}",
                position - 1,
                self.type_name,
                self.value
            )
        };
        let value = &self.value;
        let scalar = match type_name.as_str() {
            "VARCHAR" | "CHAR" => ScalarValue::Utf8(match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
                _ => return Err(fail("is not a string")),
            }),
            "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" => ScalarValue::Int64(match value {
                Value::Null => None,
                _ => Some(json_i64(value).ok_or_else(|| fail("is not an integer"))?),
            }),
            "FLOAT" | "REAL" | "DOUBLE" | "DECIMAL" | "NUMERIC" => ScalarValue::Float64(match value {
                Value::Null => None,
                Value::Number(n) => n.as_f64(),
                Value::String(s) => Some(s.trim().parse().map_err(|_| fail("is not a number"))?),
                _ => return Err(fail("is not a number")),
            }),
            "BOOLEAN" => ScalarValue::Boolean(match value {
                Value::Null => None,
                Value::Bool(b) => Some(*b),
                Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                    Some(n.as_i64() == Some(1))
                }
                Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => return Err(fail("is not a boolean (true, false, 1 or 0)")),
            }),
            "TIMESTAMP" => {
                let millis = match value {
                    Value::Null => None,
                    _ => Some(json_millis(value).map_err(|e| fail(&e))?),
                };
                ScalarValue::TimestampMillisecond(millis, Some("UTC".into()))
            }
            "DATE" => {
                let days = match value {
                    Value::Null => None,
                    _ => {
                        let millis = json_millis(value).map_err(|e| fail(&e))?;
                        let days = millis.div_euclid(86_400_000);
                        Some(i32::try_from(days).map_err(|_| fail("is out of the DATE range"))?)
                    }
                };
                ScalarValue::Date32(days)
            }
            "ARRAY" => array_scalar(value).map_err(|rule| fail(&rule))?,
            _ => {
                return Err(invalid!(
                    "\"parameters\"[{}]: unknown type \"{}\" (expected one of: {})",
                    position - 1,
                    self.type_name,
                    PARAMETER_TYPES.join(", ")
                ));
            }
        };
        Ok(scalar)
    }
}

/// An integer from a JSON number (whole floats accepted) or a numeric string.
fn json_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // Whole values inside i64's range only; `as` would saturate silently.
            (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A TIMESTAMP parameter: epoch millis as a number, or an ISO 8601 / JDBC ("2013-08-31 01:02:33")
/// string in UTC.
fn json_millis(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(v) => TimestampFormat::Auto.parse_i64(v),
            None => TimestampFormat::Auto.parse_f64(n.as_f64().unwrap_or(f64::NAN)),
        }
        .map_err(|e| e.to_string()),
        Value::String(s) => TimestampFormat::Auto.parse_str(s.trim()).map_err(|e| e.to_string()),
        _ => Err("is not a timestamp (epoch millis or an ISO 8601 string)".to_string()),
    }
}

/// An ARRAY parameter: a JSON array of strings, integers or numbers (nulls allowed), typed by its
/// elements as Druid does (ARRAY<VARCHAR>, ARRAY<BIGINT>, ARRAY<DOUBLE>).
fn array_scalar(value: &Value) -> Result<ScalarValue, String> {
    let items = match value {
        Value::Null => {
            let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
            return ScalarValue::try_from(DataType::List(field)).map_err(|e| e.to_string());
        }
        Value::Array(items) => items,
        _ => return Err("is not a JSON array".to_string()),
    };
    let present = || items.iter().filter(|v| !v.is_null());
    let (element_type, scalars): (DataType, Vec<ScalarValue>) = if present().all(Value::is_string) {
        (DataType::Utf8, items.iter().map(|v| ScalarValue::Utf8(v.as_str().map(str::to_string))).collect())
    } else if present().all(|v| v.as_i64().is_some()) {
        (DataType::Int64, items.iter().map(|v| ScalarValue::Int64(v.as_i64())).collect())
    } else if present().all(Value::is_number) {
        (DataType::Float64, items.iter().map(|v| ScalarValue::Float64(v.as_f64())).collect())
    } else {
        return Err("must hold only strings, or only numbers (and nulls)".to_string());
    };
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(&scalars, &element_type)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_defaults_and_unknown_fields() {
        let r = SqlRequest::from_json(br#"{"query":"SELECT 1","batchSize":10}"#).unwrap();
        assert_eq!(r.query, "SELECT 1");
        assert_eq!(r.result_format, ResultFormat::Object);
        assert!(!r.header && !r.types_header && !r.sql_types_header);
        assert!(r.context.is_empty() && r.parameters.is_empty());

        let r = SqlRequest::from_json(
            br#"{"query":"q","resultFormat":"OBJECTLINES","header":true,"typesHeader":true,
                "sqlTypesHeader":true,"context":{"sqlQueryId":"x"},
                "parameters":[{"type":"VARCHAR","value":"en"}]}"#,
        )
        .unwrap();
        assert_eq!(r.result_format, ResultFormat::ObjectLines);
        assert!(r.header && r.types_header && r.sql_types_header);
        assert_eq!(r.context["sqlQueryId"], "x");
        assert_eq!(r.parameters, vec![SqlParameter { type_name: "VARCHAR".into(), value: json!("en") }]);
    }

    #[test]
    fn unknown_result_format_lists_the_valid_ones() {
        let e = SqlRequest::from_json(br#"{"query":"q","resultFormat":"xml"}"#).unwrap_err();
        let QueryError::InvalidInput(m) = e else { panic!("{e:?}") };
        assert!(m.contains("unknown result format \"xml\""), "{m}");
        assert!(m.contains("object, array, objectLines, arrayLines, csv"), "{m}");
        let e = SqlRequest::from_json(br#"{"resultFormat":"csv"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `query`"), "{e}");
    }

    #[test]
    fn parameters_become_typed_literals() {
        let p = |t: &str, v: Value| SqlParameter { type_name: t.into(), value: v }.to_scalar(1);
        assert_eq!(p("VARCHAR", json!("en")).unwrap(), ScalarValue::Utf8(Some("en".into())));
        assert_eq!(p("varchar", Value::Null).unwrap(), ScalarValue::Utf8(None));
        assert_eq!(p("BIGINT", json!(42)).unwrap(), ScalarValue::Int64(Some(42)));
        assert_eq!(p("INTEGER", json!("7")).unwrap(), ScalarValue::Int64(Some(7)));
        assert_eq!(p("DOUBLE", json!(1.5)).unwrap(), ScalarValue::Float64(Some(1.5)));
        assert_eq!(p("BOOLEAN", json!(true)).unwrap(), ScalarValue::Boolean(Some(true)));
        assert_eq!(
            p("TIMESTAMP", json!("2013-08-31 01:02:33")).unwrap(),
            ScalarValue::TimestampMillisecond(Some(1_377_910_953_000), Some("UTC".into()))
        );
        assert_eq!(
            p("TIMESTAMP", json!(1_377_910_953_000_i64)).unwrap(),
            ScalarValue::TimestampMillisecond(Some(1_377_910_953_000), Some("UTC".into()))
        );
        assert_eq!(p("DATE", json!("2013-08-31")).unwrap(), ScalarValue::Date32(Some(15_948)));
        let list = p("ARRAY", json!(["a", null])).unwrap();
        assert_eq!(list.data_type(), DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))));

        let e = p("BIGINT", json!("x")).unwrap_err().to_string();
        assert_eq!(e, "\"parameters\"[0] (type BIGINT): value \"x\" is not an integer");
        let e = p("TIMESTAMP", json!("yesterday")).unwrap_err().to_string();
        assert!(e.contains("\"yesterday\" does not match format \"auto\""), "{e}");
        let e = p("BLOB", json!(1)).unwrap_err().to_string();
        assert!(e.contains("unknown type \"BLOB\" (expected one of: VARCHAR, CHAR, BIGINT"), "{e}");
    }
}
