//! Arrow values as Druid's native responses write them: numbers as JSON numbers (NaN and
//! infinities as null), strings as strings, timestamps as epoch milliseconds.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, TimeUnit, UInt64Type};
use serde_json::{Map, Number, Value};

use crate::QueryError;

/// A column in a form every value of which converts cheaply to JSON.
#[derive(Debug)]
pub struct JsonColumn {
    array: ArrayRef,
}

impl JsonColumn {
    /// Normalises a column: dictionaries and string views to strings, timestamps to epoch
    /// milliseconds, small integers to 64 bits.
    pub fn new(array: &ArrayRef) -> Result<Self, QueryError> {
        let target = match array.data_type() {
            DataType::Dictionary(_, value) => Some(value.as_ref().clone()),
            DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
            DataType::Timestamp(_, _) | DataType::Date64 => {
                Some(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            DataType::Int8 | DataType::Int16 | DataType::Int32 => Some(DataType::Int64),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Some(DataType::UInt64),
            DataType::Float16 => Some(DataType::Float64),
            _ => None,
        };
        let mut array = match target {
            Some(t) => cast(array, &t).map_err(|e| QueryError::Execution(e.to_string()))?,
            None => array.clone(),
        };
        if let DataType::Utf8View | DataType::LargeUtf8 = array.data_type() {
            array = cast(&array, &DataType::Utf8).map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        if let DataType::Timestamp(..) = array.data_type() {
            array = cast(&array, &DataType::Int64).map_err(|e| QueryError::Execution(e.to_string()))?;
        }
        Ok(Self { array })
    }

    /// The value at `row`.
    pub fn value(&self, row: usize) -> Value {
        let a = &self.array;
        if a.is_null(row) {
            return Value::Null;
        }
        match a.data_type() {
            DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(row)),
            DataType::UInt64 => Value::from(a.as_primitive::<UInt64Type>().value(row)),
            DataType::Float64 => float(a.as_primitive::<Float64Type>().value(row)),
            DataType::Float32 => float(f64::from(a.as_primitive::<Float32Type>().value(row))),
            DataType::Utf8 => Value::from(a.as_string::<i32>().value(row)),
            DataType::Boolean => Value::from(a.as_boolean().value(row)),
            DataType::Null => Value::Null,
            _ => {
                let formatter =
                    arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default());
                match formatter {
                    Ok(f) => Value::from(f.value(row).to_string()),
                    Err(_) => Value::Null,
                }
            }
        }
    }

    /// The value at `row` as epoch milliseconds, if it is a number.
    pub fn millis(&self, row: usize) -> Option<i64> {
        match self.value(row) {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
}

/// A float as a JSON number; NaN and infinities, which JSON cannot hold, become null.
fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Every column of a batch, normalised.
pub fn columns(batch: &RecordBatch) -> Result<Vec<JsonColumn>, QueryError> {
    batch.columns().iter().map(JsonColumn::new).collect()
}

/// Row `row` of a batch as an object, columns named by the batch schema, skipping `skip`.
pub fn object(batch: &RecordBatch, columns: &[JsonColumn], row: usize, skip: &[&str]) -> Map<String, Value> {
    let schema = batch.schema();
    let mut out = Map::new();
    for (field, column) in schema.fields().iter().zip(columns) {
        if !skip.contains(&field.name().as_str()) {
            out.insert(field.name().clone(), column.value(row));
        }
    }
    out
}
