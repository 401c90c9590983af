//! Dense codes for string dimension values, so native topN and groupBy group on integers the
//! way Druid groups on dictionary ids, and turn only their result rows back into strings.
//!
//! Each string column name has one [`ColumnCodes`]: a dictionary from value to `u32` code shared
//! by every segment and query of the process. A cached row group keeps the codes of the
//! columns queries grouped on (computed once, on first use), so a repeated topN over a
//! million rows hashes a million integers instead of a million strings. The dictionaries only
//! grow, so the segment cache starts new ones (new epochs) once they pass a byte bound; codes
//! of an older epoch are never mixed with a newer one's.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringViewArray, StringViewBuilder, UInt32Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, UInt32Type, UInt64Type};
use common::rollup::StringDictionary;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

/// The name of the column holding the codes of string column `column`.
pub fn code_column(column: &str) -> String {
    format!("__codes.{column}")
}

/// The schema field of the column holding the codes of string column `column`.
pub fn code_field(column: &str) -> FieldRef {
    Arc::new(Field::new(code_column(column), DataType::UInt32, true))
}

/// `batch` with, after its own columns, a code column for each dictionary of `dictionaries`
/// whose column the batch has, as `codes_of(dictionary, values)` gives them.
pub fn with_code_columns(
    batch: &RecordBatch,
    dictionaries: &[Arc<ColumnCodes>],
    mut codes_of: impl FnMut(&ColumnCodes, &ArrayRef) -> DfResult<ArrayRef>,
) -> DfResult<RecordBatch> {
    let mut fields: Vec<FieldRef> = batch.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for dictionary in dictionaries {
        if let Some(values) = batch.column_by_name(dictionary.column()) {
            columns.push(codes_of(dictionary, values)?);
            fields.push(code_field(dictionary.column()));
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

static EPOCHS: AtomicU64 = AtomicU64::new(1);

/// The code standing for a null value inside a packed pair (see [`pack_expr`]). No dictionary
/// gets near it: the cache starts a new one long before.
const NULL_IN_PAIR: u32 = u32::MAX;

/// Which codes an expression decodes: a code column, or one half of a packed pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePart {
    /// A `UInt32` column of codes.
    Whole,
    /// The first code of a pair packed by [`pack_expr`].
    High,
    /// The second code of a pair.
    Low,
}

/// One string column's dictionary: value to code, code to value. Codes start at 0 (the
/// dictionary's id less one); a null value has a null code.
#[derive(Debug)]
pub struct ColumnCodes {
    column: String,
    epoch: u64,
    table: RwLock<StringDictionary>,
}

impl ColumnCodes {
    /// An empty dictionary for `column`, in a new epoch.
    pub fn new(column: &str) -> Self {
        Self {
            column: column.to_string(),
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
            table: RwLock::new(StringDictionary::default()),
        }
    }

    /// The string column coded.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// Tells this dictionary from every other one made in this process.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes of the values held.
    pub fn bytes(&self) -> usize {
        self.read().bytes()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, StringDictionary> {
        // Every update is a push of a value and its slot, consistent at any panic point.
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The code of every value of a string column (any string type; a column of another type
    /// is taken as its text), adding values not seen before.
    pub fn encode(&self, column: &dyn Array) -> DfResult<UInt32Array> {
        let cast_column;
        let column = if column.data_type() == &DataType::Utf8View {
            column
        } else {
            cast_column = cast(column, &DataType::Utf8View)?;
            cast_column.as_ref()
        };
        let strings = column
            .as_string_view_opt()
            .ok_or_else(|| DataFusionError::Internal("a code column needs string values".into()))?;
        let mut table = self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let codes: UInt32Array = strings.iter().map(|value| value.map(|v| table.intern(v) - 1)).collect();
        Ok(codes)
    }

    /// The value of every code (null for a null code), as string views.
    pub fn decode(&self, codes: &UInt32Array) -> DfResult<StringViewArray> {
        self.decode_each(codes.len(), codes.iter())
    }

    fn decode_each(&self, len: usize, codes: impl Iterator<Item = Option<u32>>) -> DfResult<StringViewArray> {
        let table = self.read();
        let mut out = StringViewBuilder::with_capacity(len);
        for code in codes {
            match code {
                None => out.append_null(),
                Some(code) => match table.get(code.saturating_add(1)) {
                    Some(value) => out.append_value(value),
                    None => {
                        return Err(DataFusionError::Internal(format!(
                            "code {code} of column \"{}\" is not in its dictionary",
                            self.column
                        )));
                    }
                },
            }
        }
        Ok(out.finish())
    }

    /// An expression turning this dictionary's codes (a code column, or one half of a packed
    /// pair) back into their string values.
    pub fn decode_expr(self: &Arc<Self>, codes: Expr, part: CodePart) -> Expr {
        ScalarUDF::new_from_impl(DecodeCodes::new(Arc::clone(self), part)).call(vec![codes])
    }
}

/// One `UInt64` per row holding the codes of two columns (a null code as [`NULL_IN_PAIR`]):
/// grouping on one integer costs DataFusion far less than grouping on two columns.
pub fn pack_expr(high: Expr, low: Expr) -> Expr {
    ScalarUDF::new_from_impl(PackCodes {
        signature: Signature::exact(vec![DataType::UInt32; 2], Volatility::Immutable),
    })
    .call(vec![high, low])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PackCodes {
    signature: Signature,
}

impl ScalarUDFImpl for PackCodes {
    fn name(&self) -> &str {
        "pack_codes"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [high, low] = arrays.as_slice() else {
            return Err(DataFusionError::Internal("pack_codes takes two code columns".into()));
        };
        let (Some(high), Some(low)) =
            (high.as_primitive_opt::<UInt32Type>(), low.as_primitive_opt::<UInt32Type>())
        else {
            return Err(DataFusionError::Internal("pack_codes: codes must be UInt32".into()));
        };
        let part = |codes: &UInt32Array, i: usize| {
            if codes.is_valid(i) { codes.value(i) } else { NULL_IN_PAIR }
        };
        let packed: UInt64Array =
            (0..high.len()).map(|i| Some(u64::from(part(high, i)) << 32 | u64::from(part(low, i)))).collect();
        Ok(ColumnarValue::Array(Arc::new(packed)))
    }
}

/// The scalar function [`ColumnCodes::decode_expr`] plans.
#[derive(Debug)]
struct DecodeCodes {
    name: String,
    codes: Arc<ColumnCodes>,
    part: CodePart,
    signature: Signature,
}

impl DecodeCodes {
    fn new(codes: Arc<ColumnCodes>, part: CodePart) -> Self {
        let input = match part {
            CodePart::Whole => DataType::UInt32,
            CodePart::High | CodePart::Low => DataType::UInt64,
        };
        Self {
            name: format!("decode_codes_{}", codes.epoch),
            codes,
            part,
            signature: Signature::exact(vec![input], Volatility::Immutable),
        }
    }

    fn decode(&self, codes: &dyn Array) -> DfResult<StringViewArray> {
        let wrong = || DataFusionError::Internal(format!("{}: codes of the wrong type", self.name));
        let half = |packed: &UInt64Array, high: bool| {
            let codes = packed.iter().map(move |key| {
                let code = key.map(|key| if high { (key >> 32) as u32 } else { key as u32 });
                code.filter(|&c| c != NULL_IN_PAIR)
            });
            self.codes.decode_each(packed.len(), codes)
        };
        match self.part {
            CodePart::Whole => self.codes.decode(codes.as_primitive_opt::<UInt32Type>().ok_or_else(wrong)?),
            CodePart::High => half(codes.as_primitive_opt::<UInt64Type>().ok_or_else(wrong)?, true),
            CodePart::Low => half(codes.as_primitive_opt::<UInt64Type>().ok_or_else(wrong)?, false),
        }
    }
}

impl PartialEq for DecodeCodes {
    fn eq(&self, other: &Self) -> bool {
        (self.codes.epoch, self.part) == (other.codes.epoch, other.part)
    }
}

impl Eq for DecodeCodes {}

impl Hash for DecodeCodes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.codes.epoch, self.part).hash(state);
    }
}

impl ScalarUDFImpl for DecodeCodes {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = matches!(args.args.first(), Some(ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(codes) = arrays.first() else {
            return Err(DataFusionError::Internal(format!("{}: no codes given", self.name)));
        };
        let decoded = self.decode(codes.as_ref())?;
        if scalar {
            let value = decoded.is_valid(0).then(|| decoded.value(0).to_string());
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8View(value)));
        }
        Ok(ColumnarValue::Array(Arc::new(decoded)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn codes_round_trip_through_every_string_type_and_nulls() {
        let codes = ColumnCodes::new("page");
        let first = codes
            .encode(&StringViewArray::from(vec![
                Some("a"),
                None,
                Some("a long value past twelve bytes"),
                Some(""),
            ]))
            .unwrap();
        assert_eq!(first.iter().collect::<Vec<_>>(), [Some(0), None, Some(1), Some(2)]);
        // Another batch, another string type: known values keep their codes.
        let second = codes.encode(&StringArray::from(vec![Some(""), Some("b"), Some("a")])).unwrap();
        assert_eq!(second.iter().collect::<Vec<_>>(), [Some(2), Some(3), Some(0)]);
        let decoded = codes.decode(&first).unwrap();
        assert_eq!(
            decoded.iter().collect::<Vec<_>>(),
            [Some("a"), None, Some("a long value past twelve bytes"), Some("")]
        );
        assert!(codes.decode(&UInt32Array::from(vec![7])).is_err(), "a code never handed out");
        assert_ne!(ColumnCodes::new("page").epoch(), codes.epoch());
    }
}
