//! A parsed expression as a SQL condition over the `variants` table's columns, the cohort's
//! counts (`cohort_ac`, `cohort_an`, `cohort_af`) and the record's types ([`RECORD_TYPES`]).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::expression_parser::Node;

/// What a field name stands for in SQL.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    /// A column (or computed scalar) and its kind.
    Scalar(String, Kind),
    /// A list-valued INFO column.
    List(String, Kind),
    Filter,
    Type,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
    Flag,
}

/// The types ([`variant_type`]) of the ALTs of the row's record, a column computed when an
/// expression names `TYPE`.
pub(super) const RECORD_TYPES: &str = "record_types";

/// The type bcftools gives an ALT against its REF, by htslib's rules: `ref` (`.`, `<*>`,
/// `<NON_REF>`, `<X>`, `X`), `overlap` (`*`), `other` (other symbolic alleles and
/// complex changes), `bnd` (breakends), `indel` (once a common prefix is set aside, one allele
/// is empty, or one is a single base matching the other's last), `snp` (one base differs),
/// `mnp` (several bases differ, lengths equal).
pub fn variant_type(reference: &str, alt: &str) -> &'static str {
    let (r, a) = (reference.as_bytes(), alt.as_bytes());
    if a == b"*" {
        return "overlap";
    }
    if r.len() == 1 && a.len() == 1 {
        return match a[0] == b'.' || a[0] == b'X' || a[0] == r[0] {
            true => "ref",
            false => "snp",
        };
    }
    if a.first() == Some(&b'<') {
        return match alt {
            "<X>" | "<*>" | "<NON_REF>" => "ref",
            _ => "other",
        };
    }
    let same = |x: u8, y: u8| x.eq_ignore_ascii_case(&y);
    let prefix = r.iter().zip(a).take_while(|(x, y)| same(**x, **y)).count();
    let (r, a) = (&r[prefix..], &a[prefix..]);
    match (r.is_empty(), a.is_empty()) {
        (true, true) => return "ref",
        (true, false) if matches!(a[0], b'[' | b']') => return "bnd",
        (true, false) | (false, true) => return "indel",
        (false, false) => {}
    }
    // A common suffix set aside too, down to one base on each side.
    let (mut re, mut ae) = (r.len() - 1, a.len() - 1);
    while re > 0 && ae > 0 && same(r[re], a[ae]) {
        re -= 1;
        ae -= 1;
    }
    match (re, ae) {
        (0, 0) => "snp",
        (0, _) | (_, 0) if same(r[re], a[ae]) => "indel",
        (0, _) | (_, 0) => "other",
        _ if re == ae => "mnp",
        _ => "other",
    }
}

/// [`variant_type`] as a SQL function of `ref` and `alt`.
pub(super) fn variant_type_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::StringArray;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "bcftools_type",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        std::sync::Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (r, a) = (
                cast(&arrays[0], &DataType::Utf8)?,
                cast(&arrays[1], &DataType::Utf8)?,
            );
            let (r, a) = (r.as_string::<i32>(), a.as_string::<i32>());
            let types: StringArray = (0..r.len())
                .map(|i| {
                    (r.is_valid(i) && a.is_valid(i)).then(|| variant_type(r.value(i), a.value(i)))
                })
                .collect();
            Ok(ColumnarValue::Array(std::sync::Arc::new(types)))
        }),
    )
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Translates a parsed expression into SQL over the columns `kinds` describes.
pub(super) struct Translator<'a> {
    pub(super) columns: &'a HashMap<String, DataType>,
}

impl Translator<'_> {
    fn field(&self, name: &str) -> std::result::Result<Field, String> {
        let upper = name.to_ascii_uppercase();
        let scalar = |sql: &str, kind| Ok(Field::Scalar(sql.to_string(), kind));
        match upper.as_str() {
            "CHROM" => return scalar("contig", Kind::Text),
            "POS" => return scalar("pos", Kind::Number),
            "ID" => return scalar("id", Kind::Text),
            "REF" => return scalar("ref", Kind::Text),
            "ALT" => return scalar("alt", Kind::Text),
            "QUAL" => return scalar("qual", Kind::Number),
            "N_ALT" => return scalar("(n_alleles - 1)", Kind::Number),
            "AC" => return scalar("cohort_ac", Kind::Number),
            "AN" => return scalar("cohort_an", Kind::Number),
            "AF" => return scalar("cohort_af", Kind::Number),
            "FILTER" => return Ok(Field::Filter),
            "TYPE" => return Ok(Field::Type),
            _ => {}
        }
        if let Some((prefix, _)) = upper.split_once('/')
            && prefix != "INFO"
        {
            return Err(format!(
                "{name}: per-sample fields are not supported; site fields are CHROM POS ID REF \
                 ALT QUAL FILTER TYPE N_ALT AC AN AF and INFO/TAG"
            ));
        }
        let tag = upper.strip_prefix("INFO/").unwrap_or(&upper);
        let column = format!("info_{}", tag.to_ascii_lowercase());
        let Some(kind) = self.columns.get(&column) else {
            let mut known: Vec<&str> = self
                .columns
                .keys()
                .filter_map(|c| c.strip_prefix("info_"))
                .collect();
            known.sort_unstable();
            return Err(format!(
                "{name}: the store keeps no INFO field {tag} (it keeps: {})",
                known.join(" ")
            ));
        };
        let of = |t: &DataType| match t {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Boolean => Kind::Flag,
            _ => Kind::Number,
        };
        Ok(match kind {
            DataType::List(item) | DataType::LargeList(item) => {
                Field::List(column, of(item.data_type()))
            }
            other => Field::Scalar(column, of(other)),
        })
    }

    /// `node` as a SQL value.
    fn value(&self, node: &Node) -> std::result::Result<String, String> {
        match node {
            Node::Number(n) => Ok(n.clone()),
            Node::Text(t) => Ok(quoted(t)),
            Node::Field(name) => match self.field(name)? {
                Field::Scalar(sql, _) => Ok(sql),
                Field::Type => Err("TYPE compares with a \"string\"".into()),
                Field::Filter => Ok("filters".into()),
                Field::List(..) => Err(format!("{name} holds several values: compare it")),
            },
            Node::Negate(inner) => Ok(format!("(-{})", self.value(inner)?)),
            // Division in floating point, as bcftools divides (SQL divides integers whole).
            Node::Binary("/", a, b) => Ok(format!(
                "(CAST({} AS DOUBLE) / {})",
                self.value(a)?,
                self.value(b)?
            )),
            Node::Binary(op @ ("+" | "-" | "*"), a, b) => {
                Ok(format!("({} {op} {})", self.value(a)?, self.value(b)?))
            }
            other => self.condition(other),
        }
    }

    /// `node` as a SQL condition.
    pub(super) fn condition(&self, node: &Node) -> std::result::Result<String, String> {
        match node {
            Node::Binary(op @ ("&&" | "&"), a, b) | Node::Binary(op @ ("||" | "|"), a, b) => {
                let join = if op.starts_with('&') { "AND" } else { "OR" };
                Ok(format!(
                    "({} {join} {})",
                    self.condition(a)?,
                    self.condition(b)?
                ))
            }
            Node::Not(inner) => Ok(format!("(NOT {})", self.condition(inner)?)),
            Node::Binary(op @ ("==" | "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"), a, b) => {
                self.comparison(op, a, b)
            }
            Node::Field(name) => match self.field(name)? {
                Field::Scalar(sql, Kind::Flag) => Ok(format!("coalesce({sql}, false)")),
                _ => Err(format!("{name} alone is not a condition: compare it")),
            },
            other => Err(format!("{other:?} is not a condition")),
        }
    }

    fn comparison(&self, op: &str, a: &Node, b: &Node) -> std::result::Result<String, String> {
        // The field on the left.
        let (op, a, b) = match (a, b) {
            (Node::Number(_) | Node::Text(_), Node::Field(_)) => {
                let flipped = match op {
                    "<" => ">",
                    "<=" => ">=",
                    ">" => "<",
                    ">=" => "<=",
                    other => other,
                };
                (flipped, b, a)
            }
            _ => (op, a, b),
        };
        let sql_op = match op {
            "==" => "=",
            "!=" => "<>",
            other => other,
        };
        let field = match a {
            Node::Field(name) => Some(self.field(name)?),
            _ => None,
        };
        // Missing: `X="."`, `X!="."`.
        if let (Some(f), Node::Text(t)) = (&field, b)
            && t == "."
            && f != &Field::Type
        {
            let sql = match f {
                Field::Scalar(sql, _) | Field::List(sql, _) => sql.clone(),
                Field::Filter => "filters".into(),
                Field::Type => unreachable!(),
            };
            return match op {
                "=" | "==" => Ok(format!("({sql} IS NULL)")),
                "!=" => Ok(format!("({sql} IS NOT NULL)")),
                _ => Err(format!("\".\" (missing) compares with = or !=, not {op}")),
            };
        }
        match (&field, b) {
            (Some(Field::Filter), Node::Text(names)) => {
                let names: Vec<&str> = names.split(';').filter(|n| !n.is_empty()).collect();
                let set = "string_to_array(filters, ';')";
                let all = names
                    .iter()
                    .map(|n| format!("array_has({set}, {})", quoted(n)))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let exact = format!("(cardinality({set}) = {} AND {all})", names.len());
                match op {
                    "=" | "==" => Ok(format!("coalesce({exact}, false)")),
                    "!=" => Ok(format!("(NOT coalesce({exact}, false))")),
                    "~" => Ok(format!("coalesce(({all}), false)")),
                    "!~" => Ok(format!("(NOT coalesce(({all}), false))")),
                    _ => Err(format!("FILTER compares with = != ~ !~, not {op}")),
                }
            }
            (Some(Field::Filter), _) => Err("FILTER compares with a \"string\"".into()),
            (Some(Field::Type), Node::Text(t)) => {
                // The record's types, as bcftools: `=` exactly that type, `~` among them.
                let t = quoted(&t.to_ascii_lowercase());
                let only = format!("(cardinality(array_remove_all({RECORD_TYPES}, {t})) = 0)");
                let among = format!("array_has({RECORD_TYPES}, {t})");
                match op {
                    "=" | "==" => Ok(only),
                    "!=" => Ok(format!("(NOT {only})")),
                    "~" => Ok(among),
                    "!~" => Ok(format!("(NOT {among})")),
                    _ => Err(format!("TYPE compares with = != ~ !~, not {op}")),
                }
            }
            (Some(Field::Type), _) => Err("TYPE compares with a \"string\"".into()),
            (Some(Field::List(sql, kind)), _) => {
                // Any value matching: by the least or the greatest value, or by membership.
                let other = self.value(b)?;
                let any = match (op, kind) {
                    ("=" | "==", _) => format!("array_has({sql}, {other})"),
                    ("!=", _) => format!("(cardinality(array_remove_all({sql}, {other})) > 0)"),
                    ("<" | "<=", Kind::Number) => format!("(array_min({sql}) {sql_op} {other})"),
                    (">" | ">=", Kind::Number) => format!("(array_max({sql}) {sql_op} {other})"),
                    _ => {
                        return Err(format!(
                            "{op} on a field of several values is not supported"
                        ));
                    }
                };
                Ok(format!("coalesce({any}, false)"))
            }
            (Some(Field::Scalar(sql, Kind::Flag)), Node::Number(n)) => {
                let on = n.parse::<f64>().map_err(|e| e.to_string())? != 0.0;
                Ok(format!("(coalesce({sql}, false) {sql_op} {on})"))
            }
            _ => Ok(format!("({} {sql_op} {})", self.value(a)?, self.value(b)?)),
        }
    }
}
