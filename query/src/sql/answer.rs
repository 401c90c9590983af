//! A finished SQL result and its encoding in Druid's result formats, byte for byte as Druid's
//! `ObjectWriter`, `ArrayWriter`, `ObjectLinesWriter`, `ArrayLinesWriter` and `CsvWriter` write it.
//!
//! Columns are normalized once, when the answer is built, into the few shapes Druid results have
//! (long, float, double, boolean, string, timestamp, array), so encoding cannot fail: timestamps
//! and dates become ISO 8601 strings in UTC with millis, dictionary and view strings plain strings,
//! decimals doubles, and types Druid has no JSON form for their Arrow display text.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema, TimeUnit, UInt64Type};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use common::time::format_iso;

use super::request::{ResultFormat, SqlRequest};
use super::types::{native_type_name, sql_type_name};

/// One output column: its name and the types Druid reports for it in the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlColumn {
    /// The column name (`EXPR$n` for unnamed expressions, as Calcite names them).
    pub name: String,
    /// The SQL type (`sqlTypesHeader`): TIMESTAMP, VARCHAR, BIGINT, FLOAT, DOUBLE, ...
    pub sql_type: &'static str,
    /// The native Druid type (`typesHeader`): LONG, STRING, FLOAT, DOUBLE, ARRAY<...>, ...
    pub native_type: Option<String>,
}

/// The rows of a SQL query, ready to be encoded in any result format.
#[derive(Debug)]
pub struct SqlAnswer {
    columns: Vec<SqlColumn>,
    batches: Vec<Batch>,
}

#[derive(Debug)]
struct Batch {
    rows: usize,
    columns: Vec<Column>,
}

/// A column in one of the shapes Druid writes.
#[derive(Debug)]
enum Column {
    Null,
    Bool(BooleanArray),
    Long(Int64Array),
    UnsignedLong(UInt64Array),
    Float(Float32Array),
    Double(Float64Array),
    String(StringArray),
    /// UTC epoch millis, written as ISO 8601.
    Time(Int64Array),
    Array {
        offsets: OffsetBuffer<i32>,
        nulls: Option<NullBuffer>,
        values: Box<Column>,
    },
}

/// One value, borrowed from its column.
enum Cell<'a> {
    Null,
    Bool(bool),
    Long(i64),
    UnsignedLong(u64),
    Float(f32),
    Double(f64),
    String(&'a str),
    Time(i64),
    Array(&'a Column, std::ops::Range<usize>),
}

impl SqlAnswer {
    /// Normalizes `batches` (all of `schema`) for encoding.
    pub(crate) fn new(schema: &Schema, batches: &[RecordBatch]) -> Result<Self, ArrowError> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| SqlColumn {
                name: f.name().clone(),
                sql_type: sql_type_name(f.data_type()),
                native_type: native_type_name(f.data_type()),
            })
            .collect();
        let batches = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                let columns = b.columns().iter().map(Column::new).collect::<Result<_, _>>()?;
                Ok(Batch { rows: b.num_rows(), columns })
            })
            .collect::<Result<_, ArrowError>>()?;
        Ok(Self { columns, batches })
    }

    /// The output columns, in order.
    pub fn columns(&self) -> &[SqlColumn] {
        &self.columns
    }

    /// How many rows the query returned.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.rows).sum()
    }

    /// The body Druid would send for `request`'s result format and headers, with its
    /// `Content-Type`.
    pub fn encode(&self, request: &SqlRequest) -> (&'static str, Vec<u8>) {
        let format = request.result_format;
        let header = Header {
            names: request.header,
            types: request.header && request.types_header,
            sql_types: request.header && request.sql_types_header,
        };
        let mut out = Vec::with_capacity(64 + self.num_rows() * 16 * self.columns.len().max(1));
        match format {
            ResultFormat::Object | ResultFormat::ObjectLines => {
                self.write_json(&mut out, format, header, true)
            }
            ResultFormat::Array | ResultFormat::ArrayLines => {
                self.write_json(&mut out, format, header, false)
            }
            ResultFormat::Csv => self.write_csv(&mut out, header),
        }
        (format.content_type(), out)
    }

    fn rows(&self) -> impl Iterator<Item = (&Batch, usize)> {
        self.batches.iter().flat_map(|b| (0..b.rows).map(move |row| (b, row)))
    }

    /// `object`, `array` and their `...Lines` forms: one JSON value per row (the header rows
    /// first), inside `[...]` then LF, or each on its own line then a blank line.
    fn write_json(&self, out: &mut Vec<u8>, format: ResultFormat, header: Header, objects: bool) {
        let lines = matches!(format, ResultFormat::ObjectLines | ResultFormat::ArrayLines);
        let mut first = true;
        let mut separate = |out: &mut Vec<u8>| {
            if !first {
                out.push(if lines { b'\n' } else { b',' });
            }
            first = false;
        };
        if !lines {
            out.push(b'[');
        }
        if header.names {
            if objects {
                separate(out);
                self.write_object_header(out, header);
            } else {
                // Names, then native types, then SQL types, each as its own array.
                separate(out);
                write_json_array(out, self.columns.iter(), |out, c| write_json_string(out, &c.name));
                if header.types {
                    separate(out);
                    write_json_array(out, self.columns.iter(), |out, c| match &c.native_type {
                        Some(t) => write_json_string(out, t),
                        None => out.extend_from_slice(b"null"),
                    });
                }
                if header.sql_types {
                    separate(out);
                    write_json_array(out, self.columns.iter(), |out, c| write_json_string(out, c.sql_type));
                }
            }
        }
        for (batch, row) in self.rows() {
            separate(out);
            if objects {
                out.push(b'{');
                for (i, (column, meta)) in batch.columns.iter().zip(&self.columns).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(out, &meta.name);
                    out.push(b':');
                    write_json_cell(out, column.cell(row));
                }
                out.push(b'}');
            } else {
                write_json_array(out, batch.columns.iter(), |out, c| write_json_cell(out, c.cell(row)));
            }
        }
        if lines {
            // Druid ends the last line, then writes a blank line so a cut-off body is detectable.
            out.extend_from_slice(b"\n\n");
        } else {
            out.extend_from_slice(b"]\n");
        }
    }

    /// `{"name": null, ...}`, or `{"name": {"type": ..., "sqlType": ...}, ...}` with type headers.
    fn write_object_header(&self, out: &mut Vec<u8>, header: Header) {
        out.push(b'{');
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(out, &column.name);
            out.push(b':');
            if !header.types && !header.sql_types {
                out.extend_from_slice(b"null");
                continue;
            }
            out.push(b'{');
            if header.types {
                out.extend_from_slice(b"\"type\":");
                match &column.native_type {
                    Some(t) => write_json_string(out, t),
                    None => out.extend_from_slice(b"null"),
                }
            }
            if header.sql_types {
                if header.types {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"sqlType\":");
                write_json_string(out, column.sql_type);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }

    /// `csv`: header lines, one line per row, then a blank line.
    fn write_csv(&self, out: &mut Vec<u8>, header: Header) {
        if header.names {
            write_csv_line(out, self.columns.iter().map(|c| Some(Cow::Borrowed(c.name.as_str()))), false);
            if header.types {
                write_csv_line(
                    out,
                    self.columns.iter().map(|c| c.native_type.as_deref().map(Cow::Borrowed)),
                    false,
                );
            }
            if header.sql_types {
                write_csv_line(out, self.columns.iter().map(|c| Some(Cow::Borrowed(c.sql_type))), false);
            }
        }
        for (batch, row) in self.rows() {
            let fields: Vec<Option<Cow<'_, str>>> =
                batch.columns.iter().map(|c| csv_text(c.cell(row))).collect();
            // A lone empty field is quoted so the line cannot be taken for the closing blank line.
            let quote_all = matches!(fields.as_slice(), [f] if f.as_deref().is_none_or(str::is_empty));
            write_csv_line(out, fields.into_iter(), quote_all);
        }
        out.push(b'\n');
    }
}

/// Which header rows to write.
#[derive(Debug, Clone, Copy)]
struct Header {
    names: bool,
    types: bool,
    sql_types: bool,
}

impl Column {
    fn new(array: &ArrayRef) -> Result<Self, ArrowError> {
        let data_type = array.data_type();
        Ok(match data_type {
            DataType::Null => Self::Null,
            DataType::Boolean => Self::Bool(array.as_boolean().clone()),
            DataType::Int64 => Self::Long(array.as_primitive::<Int64Type>().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => {
                Self::Long(cast(array, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
            }
            DataType::UInt64 => Self::UnsignedLong(array.as_primitive::<UInt64Type>().clone()),
            DataType::Float32 => Self::Float(array.as_primitive::<Float32Type>().clone()),
            DataType::Float16 => {
                Self::Float(cast(array, &DataType::Float32)?.as_primitive::<Float32Type>().clone())
            }
            DataType::Float64 => Self::Double(array.as_primitive::<Float64Type>().clone()),
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..) => {
                Self::Double(cast(array, &DataType::Float64)?.as_primitive::<Float64Type>().clone())
            }
            DataType::Utf8 => Self::String(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 | DataType::Utf8View => {
                Self::String(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            DataType::Dictionary(_, value) => Self::new(&cast(array, value)?)?,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
                // Timestamps hold UTC instants whatever their zone; dates are UTC midnights.
                let millis = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
                Self::Time(cast(&millis, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
            }
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                Self::Array {
                    offsets: list.offsets().clone(),
                    nulls: list.nulls().cloned(),
                    values: Box::new(Self::new(list.values())?),
                }
            }
            DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
                let as_list = DataType::List(Arc::new(Field::new_list_field(f.data_type().clone(), true)));
                match cast(array, &as_list) {
                    Ok(list) => Self::new(&list)?,
                    Err(_) => Self::display(array)?,
                }
            }
            _ => Self::display(array)?,
        })
    }

    /// Types Druid has no JSON form for (TIME, intervals, binary, structs, ...) as Arrow prints them.
    fn display(array: &ArrayRef) -> Result<Self, ArrowError> {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        let values: StringArray =
            (0..array.len()).map(|i| array.is_valid(i).then(|| formatter.value(i).to_string())).collect();
        Ok(Self::String(values))
    }

    fn cell(&self, row: usize) -> Cell<'_> {
        let valid = match self {
            Self::Null => false,
            Self::Bool(a) => a.is_valid(row),
            Self::Long(a) | Self::Time(a) => a.is_valid(row),
            Self::UnsignedLong(a) => a.is_valid(row),
            Self::Float(a) => a.is_valid(row),
            Self::Double(a) => a.is_valid(row),
            Self::String(a) => a.is_valid(row),
            Self::Array { nulls, .. } => nulls.as_ref().is_none_or(|n| n.is_valid(row)),
        };
        if !valid {
            return Cell::Null;
        }
        match self {
            Self::Null => Cell::Null,
            Self::Bool(a) => Cell::Bool(a.value(row)),
            Self::Long(a) => Cell::Long(a.value(row)),
            Self::UnsignedLong(a) => Cell::UnsignedLong(a.value(row)),
            Self::Float(a) => Cell::Float(a.value(row)),
            Self::Double(a) => Cell::Double(a.value(row)),
            Self::String(a) => Cell::String(a.value(row)),
            Self::Time(a) => Cell::Time(a.value(row)),
            Self::Array { offsets, values, .. } => {
                // Offsets of a valid ListArray are non-negative and increasing.
                let start = usize::try_from(offsets[row]).unwrap_or(0);
                let end = usize::try_from(offsets[row + 1]).unwrap_or(start);
                Cell::Array(values, start..end)
            }
        }
    }
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a &str always serializes.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_json_array<T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn write_json_cell(out: &mut Vec<u8>, cell: Cell<'_>) {
    // Writes into a Vec cannot fail.
    let _ = match cell {
        Cell::Null => out.write_all(b"null"),
        Cell::Bool(b) => out.write_all(if b { b"true" } else { b"false" }),
        Cell::Long(v) => write!(out, "{v}"),
        Cell::UnsignedLong(v) => write!(out, "{v}"),
        // JSON has no NaN or infinities: they are written as null.
        Cell::Float(v) if v.is_finite() => {
            serde_json::to_writer(&mut *out, &v).map_err(std::io::Error::other)
        }
        Cell::Double(v) if v.is_finite() => {
            serde_json::to_writer(&mut *out, &v).map_err(std::io::Error::other)
        }
        Cell::Float(_) | Cell::Double(_) => out.write_all(b"null"),
        Cell::String(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other),
        Cell::Time(millis) => write!(out, "\"{}\"", format_iso(millis)),
        Cell::Array(values, range) => {
            write_json_array(out, range, |out, i| write_json_cell(out, values.cell(i)));
            Ok(())
        }
    };
}

/// A value as Druid's CSV writer prints it (`String.valueOf`, timestamps already ISO); `None` for
/// NULL, which CSV cannot tell from an empty string.
fn csv_text(cell: Cell<'_>) -> Option<Cow<'_, str>> {
    Some(match cell {
        Cell::Null => return None,
        Cell::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Cell::Long(v) => Cow::Owned(v.to_string()),
        Cell::UnsignedLong(v) => Cow::Owned(v.to_string()),
        Cell::Float(v) if v.is_finite() => Cow::Owned(serde_json::to_string(&v).unwrap_or_default()),
        Cell::Double(v) if v.is_finite() => Cow::Owned(serde_json::to_string(&v).unwrap_or_default()),
        Cell::Float(_) | Cell::Double(_) => return None,
        Cell::String(s) => Cow::Borrowed(s),
        Cell::Time(millis) => Cow::Owned(format_iso(millis)),
        // Java's List.toString(): "[a, b, null]".
        Cell::Array(values, range) => {
            let items: Vec<String> = range
                .map(|i| csv_text(values.cell(i)).map_or_else(|| "null".to_string(), Cow::into_owned))
                .collect();
            Cow::Owned(format!("[{}]", items.join(", ")))
        }
    })
}

/// One CSV line as opencsv writes it for Druid: fields quoted only when they hold a quote, comma
/// or line break (or all of them when `quote_all`), quotes doubled, LF at the end.
fn write_csv_line<'a>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = Option<Cow<'a, str>>>,
    quote_all: bool,
) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = field.as_deref().unwrap_or("");
        if quote_all || text.contains(['"', ',', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use arrow::array::{ListArray, StringDictionaryBuilder, TimestampMillisecondArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    fn answer() -> SqlAnswer {
        let mut channel = StringDictionaryBuilder::<Int32Type>::new();
        channel.append_value("#en, \"quoted\"");
        channel.append_null();
        let schema = Schema::new(vec![
            Field::new("__time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new(
                "channel",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("added", DataType::Int64, true),
            Field::new("delta", DataType::Float64, true),
            Field::new("tags", DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![1_377_910_953_000, 0]).with_timezone("UTC")),
                Arc::new(channel.finish()),
                Arc::new(Int64Array::from(vec![Some(57), None])),
                Arc::new(Float64Array::from(vec![1.5, f64::NAN])),
                Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                    Some(vec![Some(1), None]),
                    None,
                ])),
            ],
        )
        .unwrap();
        SqlAnswer::new(&schema, &[batch]).unwrap()
    }

    fn encode(format: &str, header: bool, types: bool, sql_types: bool) -> (&'static str, String) {
        let mut request = SqlRequest::new("");
        request.result_format = ResultFormat::parse(format).unwrap();
        (request.header, request.types_header, request.sql_types_header) = (header, types, sql_types);
        let (content_type, body) = answer().encode(&request);
        (content_type, String::from_utf8(body).unwrap())
    }

    const ROW1: &str = r##"{"__time":"2013-08-31T01:02:33.000Z","channel":"#en, \"quoted\"","added":57,"delta":1.5,"tags":[1,null]}"##;
    const ROW2: &str =
        r#"{"__time":"1970-01-01T00:00:00.000Z","channel":null,"added":null,"delta":null,"tags":null}"#;
    const AROW1: &str = r##"["2013-08-31T01:02:33.000Z","#en, \"quoted\"",57,1.5,[1,null]]"##;
    const AROW2: &str = r#"["1970-01-01T00:00:00.000Z",null,null,null,null]"#;

    #[test]
    fn object_formats() {
        assert_eq!(encode("object", false, false, false), ("application/json", format!("[{ROW1},{ROW2}]\n")));
        let header = r#"{"__time":null,"channel":null,"added":null,"delta":null,"tags":null}"#;
        assert_eq!(encode("object", true, false, false).1, format!("[{header},{ROW1},{ROW2}]\n"));
        let header = r#"{"__time":{"type":"LONG","sqlType":"TIMESTAMP"},"channel":{"type":"STRING","sqlType":"VARCHAR"},"added":{"type":"LONG","sqlType":"BIGINT"},"delta":{"type":"DOUBLE","sqlType":"DOUBLE"},"tags":{"type":"ARRAY<LONG>","sqlType":"ARRAY"}}"#;
        assert_eq!(encode("object", true, true, true).1, format!("[{header},{ROW1},{ROW2}]\n"));
        let header = r#"{"__time":{"sqlType":"TIMESTAMP"},"channel":{"sqlType":"VARCHAR"},"added":{"sqlType":"BIGINT"},"delta":{"sqlType":"DOUBLE"},"tags":{"sqlType":"ARRAY"}}"#;
        assert_eq!(encode("object", true, false, true).1, format!("[{header},{ROW1},{ROW2}]\n"));
        // Type headers need `header`.
        assert_eq!(encode("object", false, true, true).1, format!("[{ROW1},{ROW2}]\n"));

        assert_eq!(encode("objectLines", false, false, false), ("text/plain", format!("{ROW1}\n{ROW2}\n\n")));
        let header = r#"{"__time":{"type":"LONG"},"channel":{"type":"STRING"},"added":{"type":"LONG"},"delta":{"type":"DOUBLE"},"tags":{"type":"ARRAY<LONG>"}}"#;
        assert_eq!(encode("objectLines", true, true, false).1, format!("{header}\n{ROW1}\n{ROW2}\n\n"));
    }

    #[test]
    fn array_formats() {
        assert_eq!(
            encode("array", false, false, false),
            ("application/json", format!("[{AROW1},{AROW2}]\n"))
        );
        let names = r#"["__time","channel","added","delta","tags"]"#;
        let types = r#"["LONG","STRING","LONG","DOUBLE","ARRAY<LONG>"]"#;
        let sql_types = r#"["TIMESTAMP","VARCHAR","BIGINT","DOUBLE","ARRAY"]"#;
        assert_eq!(encode("array", true, false, false).1, format!("[{names},{AROW1},{AROW2}]\n"));
        assert_eq!(
            encode("array", true, true, true).1,
            format!("[{names},{types},{sql_types},{AROW1},{AROW2}]\n")
        );
        assert_eq!(
            encode("arrayLines", false, false, false),
            ("text/plain", format!("{AROW1}\n{AROW2}\n\n"))
        );
        assert_eq!(
            encode("arrayLines", true, false, true).1,
            format!("{names}\n{sql_types}\n{AROW1}\n{AROW2}\n\n")
        );
    }

    #[test]
    fn csv_format() {
        let rows = "2013-08-31T01:02:33.000Z,\"#en, \"\"quoted\"\"\",57,1.5,\"[1, null]\"\n\
                    1970-01-01T00:00:00.000Z,,,,\n";
        assert_eq!(encode("csv", false, false, false), ("text/csv", format!("{rows}\n")));
        let header = "__time,channel,added,delta,tags\n";
        assert_eq!(encode("csv", true, false, false).1, format!("{header}{rows}\n"));
        let types = "LONG,STRING,LONG,DOUBLE,ARRAY<LONG>\nTIMESTAMP,VARCHAR,BIGINT,DOUBLE,ARRAY\n";
        assert_eq!(encode("csv", true, true, true).1, format!("{header}{types}{rows}\n"));
    }

    #[test]
    fn empty_results_and_lone_empty_csv_fields() {
        let schema = Schema::new(vec![Field::new("page", DataType::Utf8, true)]);
        let empty = SqlAnswer::new(&schema, &[]).unwrap();
        let request = |format| {
            let mut r = SqlRequest::new("");
            r.result_format = format;
            r
        };
        assert_eq!(empty.encode(&request(ResultFormat::Object)).1, b"[]\n");
        assert_eq!(empty.encode(&request(ResultFormat::ArrayLines)).1, b"\n\n");
        assert_eq!(empty.encode(&request(ResultFormat::Csv)).1, b"\n");

        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(StringArray::from(vec![Some(""), None, Some("a")]))],
        )
        .unwrap();
        let answer = SqlAnswer::new(&schema, &[batch]).unwrap();
        assert_eq!(answer.num_rows(), 3);
        assert_eq!(answer.encode(&request(ResultFormat::Csv)).1, b"\"\"\n\"\"\na\n\n");
    }
}
