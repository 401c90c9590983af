//! Druid's names for Arrow types: the SQL type (`sqlTypesHeader`, `INFORMATION_SCHEMA.COLUMNS`
//! `DATA_TYPE`), the native runtime type (`typesHeader`) and the JDBC type code (`JDBC_TYPE`).

use arrow::datatypes::DataType;

/// The SQL type name Druid's Calcite planner reports for a column of `data_type`
/// (`SqlTypeName.getName()`): "TIMESTAMP" for `__time`, "VARCHAR" for strings, "BIGINT" for longs.
pub(crate) fn sql_type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Int64 | DataType::UInt64 | DataType::UInt32 => "BIGINT",
        DataType::Int32 | DataType::UInt16 => "INTEGER",
        DataType::Int16 | DataType::UInt8 => "SMALLINT",
        DataType::Int8 => "TINYINT",
        DataType::Float16 | DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "DECIMAL",
        DataType::Boolean => "BOOLEAN",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR",
        DataType::Dictionary(_, value) => sql_type_name(value),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_) => {
            "ARRAY"
        }
        DataType::Null => "NULL",
        _ => "OTHER",
    }
}

/// Druid's native runtime type (`ColumnType.asTypeString()`) for `typesHeader`: timestamps, integers
/// and booleans are LONG, strings STRING, arrays `ARRAY<elem>`, anything else COMPLEX. `None` for
/// the NULL type, whose native type Druid cannot name either.
pub(crate) fn native_type_name(data_type: &DataType) -> Option<String> {
    let name = match data_type {
        DataType::Null => return None,
        DataType::Timestamp(..)
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "LONG",
        DataType::Float16 | DataType::Float32 => "FLOAT",
        DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "DOUBLE",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING",
        DataType::Dictionary(_, value) => return native_type_name(value),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f) => {
            let element = native_type_name(f.data_type()).unwrap_or_else(|| "STRING".to_string());
            return Some(format!("ARRAY<{element}>"));
        }
        _ => "COMPLEX",
    };
    Some(name.to_string())
}

/// The `java.sql.Types` code of [`sql_type_name`] (`INFORMATION_SCHEMA.COLUMNS.JDBC_TYPE`, which
/// pydruid's SQLAlchemy dialect maps to column types).
pub(crate) fn jdbc_type(data_type: &DataType) -> i64 {
    match sql_type_name(data_type) {
        "TIMESTAMP" => 93,
        "DATE" => 91,
        "TIME" => 92,
        "BIGINT" => -5,
        "INTEGER" => 4,
        "SMALLINT" => 5,
        "TINYINT" => -6,
        "FLOAT" => 6,
        "DOUBLE" => 8,
        "DECIMAL" => 3,
        "BOOLEAN" => 16,
        "VARCHAR" => 12,
        "ARRAY" => 2003,
        "NULL" => 0,
        _ => 1111,
    }
}

/// `(NUMERIC_PRECISION, NUMERIC_PRECISION_RADIX, NUMERIC_SCALE)` for numeric columns, Calcite's
/// default precisions; `None` for everything else.
pub(crate) fn numeric_precision(data_type: &DataType) -> Option<(i64, i64, Option<i64>)> {
    let integer = |precision| Some((precision, 10, Some(0)));
    match data_type {
        DataType::Dictionary(_, value) => numeric_precision(value),
        DataType::Int8 => integer(3),
        DataType::Int16 | DataType::UInt8 => integer(5),
        DataType::Int32 | DataType::UInt16 => integer(10),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => integer(19),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Some((15, 10, None)),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            Some((i64::from(*p), 10, Some(i64::from(*s))))
        }
        DataType::Decimal256(p, s) => Some((i64::from(*p), 10, Some(i64::from(*s)))),
        _ => None,
    }
}

/// `DATETIME_PRECISION`: fractional-second digits of TIMESTAMP (millis) and TIME, 0 for DATE.
pub(crate) fn datetime_precision(data_type: &DataType) -> Option<i64> {
    match sql_type_name(data_type) {
        "TIMESTAMP" | "TIME" => Some(3),
        "DATE" => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, TimeUnit};

    use super::*;

    #[test]
    fn druid_names_for_the_datasource_column_types() {
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let cases = [
            (time, "TIMESTAMP", Some("LONG"), 93),
            (dict, "VARCHAR", Some("STRING"), 12),
            (DataType::Int64, "BIGINT", Some("LONG"), -5),
            (DataType::Float32, "FLOAT", Some("FLOAT"), 6),
            (DataType::Float64, "DOUBLE", Some("DOUBLE"), 8),
            (DataType::Boolean, "BOOLEAN", Some("LONG"), 16),
            (DataType::Null, "NULL", None, 0),
        ];
        for (data_type, sql, native, jdbc) in cases {
            assert_eq!(sql_type_name(&data_type), sql, "{data_type}");
            assert_eq!(native_type_name(&data_type).as_deref(), native, "{data_type}");
            assert_eq!(jdbc_type(&data_type), jdbc, "{data_type}");
        }
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(sql_type_name(&list), "ARRAY");
        assert_eq!(native_type_name(&list).as_deref(), Some("ARRAY<STRING>"));
    }
}
