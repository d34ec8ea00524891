//! bcftools filter expressions on sites (`-i EXPR` keeps, `-e EXPR` drops), for `af`, `assoc`,
//! `case-control` and `export`: parsed here into a SQL expression over the `variants` table
//! and the cohort's counts, and evaluated by DataFusion.
//!
//! The language is bcftools' (`bcftools view -i`) over site fields:
//!
//! - fields `CHROM POS ID REF ALT QUAL FILTER TYPE N_ALT`, `INFO/TAG` (or a bare `TAG`) for the
//!   INFO fields the store keeps, and `AC`, `AN`, `AF`: the counts within the command's cohort
//!   (as `bcftools view -S` recomputes them; `INFO/AC`, `INFO/AN`, `INFO/AF` are the input's);
//! - numbers, `"strings"` (or `'strings'`), `.` for missing (`QUAL="."`);
//! - `== = != < <= > >=`, `~ !~` (regular expressions), `&& &`, `|| |`, `!`, `( )`,
//!   `+ - * /`;
//! - `FILTER="A;B"` is the exact set of filters, `FILTER~"A"` that A is among them,
//!   `FILTER="."` no filter; `TYPE="snp"` a record whose ALTs are all SNPs, `TYPE~"snp"` one
//!   with a SNP among them ([`variant_type`]: `snp`, `mnp`, `indel`, `bnd`, `overlap`, `ref`,
//!   `other`).
//!
//! An expression is evaluated on each ALT row (a `Number=A` field gives the row's value; a field
//! of several values matches when any value does, as in bcftools), and a record matches when
//! one of its ALT rows does: `-i` keeps the records that match, `-e` those that do not. A
//! missing value compares false, in `-i` and in `-e` alike. Per-sample expressions
//! (`FORMAT/DP`, `GT="het"`) are refused.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::JoinType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::col;

use crate::cohort::members::Cohort;
use crate::cohort_engine::CohortEngine;
use crate::error::{EngineError, Result};
use crate::ops::site_qc::SitePass;
use crate::region::Region;
use crate::rows::span_pruning::region_filter;

/// `-i EXPR` (keep what matches) or `-e EXPR` (drop what matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFilter {
    /// `true` for `-i`, `false` for `-e`.
    pub include: bool,
    /// The expression, as bcftools takes it.
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(String),
    Text(String),
    Name(String),
    Op(&'static str),
    Open,
    Close,
}

const OPERATORS: [&str; 17] = [
    "&&", "||", "==", "!=", "<=", ">=", "!~", "&", "|", "=", "<", ">", "~", "!", "+", "-", "*",
];

fn tokens(text: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest: String = chars[i..].iter().take(2).collect();
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| format!("unterminated string at character {}", i + 1))?;
            out.push(Token::Text(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            number
                .parse::<f64>()
                .map_err(|_| format!("{number:?} is not a number"))?;
            out.push(Token::Number(number));
        } else if c == '.' {
            // A bare `.`: missing, as `"."`.
            out.push(Token::Text(".".into()));
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let word = |i: &mut usize| {
                let start = *i;
                while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
                    *i += 1;
                }
                chars[start..*i].iter().collect::<String>()
            };
            let mut name = word(&mut i);
            // INFO/TAG, FORMAT/TAG: one name (a `/` elsewhere divides).
            let prefix = ["INFO", "FORMAT", "FMT"].contains(&name.to_ascii_uppercase().as_str());
            if prefix && chars.get(i) == Some(&'/') {
                i += 1;
                name = format!("{name}/{}", word(&mut i));
            }
            out.push(Token::Name(name));
        } else if let Some(op) = OPERATORS
            .iter()
            .chain(&["/"])
            .find(|op| rest.starts_with(**op))
        {
            out.push(Token::Op(op));
            i += op.len();
        } else {
            return Err(format!("unexpected {c:?} at character {}", i + 1));
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Number(String),
    Text(String),
    Field(String),
    Not(Box<Node>),
    Negate(Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_op(&self, ops: &[&str]) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) if ops.contains(op) => Some(op),
            _ => None,
        }
    }

    fn binary(
        &mut self,
        ops: &[&str],
        next: fn(&mut Self) -> std::result::Result<Node, String>,
    ) -> std::result::Result<Node, String> {
        let mut node = next(self)?;
        while let Some(op) = self.peek_op(ops) {
            self.at += 1;
            node = Node::Binary(op, Box::new(node), Box::new(next(self)?));
        }
        Ok(node)
    }

    fn or(&mut self) -> std::result::Result<Node, String> {
        self.binary(&["||", "|"], Self::and)
    }

    fn and(&mut self) -> std::result::Result<Node, String> {
        self.binary(&["&&", "&"], Self::comparison)
    }

    fn comparison(&mut self) -> std::result::Result<Node, String> {
        let node = self.sum()?;
        match self.peek_op(&["==", "=", "!=", "<", "<=", ">", ">=", "~", "!~"]) {
            Some(op) => {
                self.at += 1;
                Ok(Node::Binary(op, Box::new(node), Box::new(self.sum()?)))
            }
            None => Ok(node),
        }
    }

    fn sum(&mut self) -> std::result::Result<Node, String> {
        self.binary(&["+", "-"], Self::product)
    }

    fn product(&mut self) -> std::result::Result<Node, String> {
        self.binary(&["*", "/"], Self::unary)
    }

    fn unary(&mut self) -> std::result::Result<Node, String> {
        if let Some(op) = self.peek_op(&["!", "-"]) {
            self.at += 1;
            let inner = Box::new(self.unary()?);
            return Ok(if op == "!" {
                Node::Not(inner)
            } else {
                Node::Negate(inner)
            });
        }
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Number(n)) => Ok(Node::Number(n)),
            Some(Token::Text(t)) => Ok(Node::Text(t)),
            Some(Token::Name(name)) => match self.tokens.get(self.at) {
                Some(Token::Open) => Err(format!("function {name}(...) is not supported")),
                _ => Ok(Node::Field(name)),
            },
            Some(Token::Open) => {
                let node = self.or()?;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(node)
                    }
                    _ => Err("a ( is not closed".into()),
                }
            }
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("the expression ends too early".into()),
        }
    }
}

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
const RECORD_TYPES: &str = "record_types";

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
fn variant_type_udf() -> datafusion::logical_expr::ScalarUDF {
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
struct Translator<'a> {
    columns: &'a HashMap<String, DataType>,
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
    fn condition(&self, node: &Node) -> std::result::Result<String, String> {
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

impl SiteFilter {
    /// The expression as a SQL condition over `columns` (name -> type), and whether it uses
    /// the cohort's counts.
    fn sql(&self, columns: &HashMap<String, DataType>) -> Result<(String, bool)> {
        let invalid = |reason: String| {
            EngineError::InvalidArgument(format!(
                "{} {:?}: {reason}",
                if self.include { "-i" } else { "-e" },
                self.expression
            ))
        };
        let tokens = tokens(&self.expression).map_err(invalid)?;
        if tokens.is_empty() {
            return Err(invalid("the expression is empty".into()));
        }
        let mut parser = Parser { tokens, at: 0 };
        let node = parser.or().map_err(invalid)?;
        if parser.at < parser.tokens.len() {
            return Err(invalid(format!(
                "unexpected {:?} after the expression",
                parser.tokens[parser.at]
            )));
        }
        let sql = Translator { columns }.condition(&node).map_err(invalid)?;
        Ok((sql.clone(), sql.contains("cohort_")))
    }
}

impl CohortEngine {
    /// Which ALT rows of `regions` a bcftools filter expression keeps within `cohort` (see the
    /// module). Expressions over exact counts are refused at the aggregate tier.
    pub async fn site_filter(
        &self,
        regions: &[Region],
        cohort: &Cohort,
        filter: &SiteFilter,
    ) -> Result<SitePass> {
        if self.tier() == crate::policy::access_policy::Tier::Aggregate {
            return Err(EngineError::PermissionDenied(
                "filter expressions (-i, -e) decide on exact values, which the aggregate tier \
                 is not given"
                    .into(),
            ));
        }
        self.check_regions(regions)?;
        let ctx = self.full_session()?;
        let mut variants = ctx.table("variants").await?;
        if let Some(filter) = region_filter(regions) {
            variants = variants.filter(filter)?;
        }
        let columns: HashMap<String, DataType> = variants
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let (sql, counts) = filter.sql(&columns)?;
        let mut frame = variants;
        if sql.contains(RECORD_TYPES) {
            use datafusion::logical_expr::{Expr, ExprFunctionExt, expr::WindowFunction};
            let types = Expr::from(WindowFunction::new(
                datafusion::functions_aggregate::array_agg::array_agg_udaf(),
                vec![variant_type_udf().call(vec![col("ref"), col("alt")])],
            ))
            .partition_by(vec![col("contig"), col("pos"), col("record_ordinal")])
            .build()?
            .alias(RECORD_TYPES);
            frame = frame.window(vec![types])?;
        }
        if counts {
            let batch = self.allele_frequencies(regions, cohort).await?;
            let counts = ctx.read_batch(batch)?.select(vec![
                col("chrom").alias("c_chrom"),
                col("pos").alias("c_pos"),
                col("ref").alias("c_ref"),
                col("alt").alias("c_alt"),
                col("ac").alias("cohort_ac"),
                col("an").alias("cohort_an"),
                col("af").alias("cohort_af"),
            ])?;
            frame = frame.join(
                counts,
                JoinType::Left,
                &["contig", "pos", "ref", "alt"],
                &["c_chrom", "c_pos", "c_ref", "c_alt"],
                None,
            )?;
        }
        let condition = frame.parse_sql_expr(&sql)?;
        let batches = frame
            .select(vec![
                col("contig"),
                col("pos"),
                col("record_ordinal"),
                col("ref"),
                col("alt"),
                condition.is_true().alias("matched"),
            ])?
            .collect()
            .await?;
        // A record matches when one of its ALT rows does.
        let mut rows: Vec<(String, i64, i32, String, String)> = Vec::new();
        let mut matched: HashSet<(String, i64, i32)> = HashSet::new();
        for batch in &batches {
            let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
            let (contig, reference, alt) = (text(0), text(3), text(4));
            let (contig, reference, alt) = (
                contig.map_err(DataFusionError::from)?,
                reference.map_err(DataFusionError::from)?,
                alt.map_err(DataFusionError::from)?,
            );
            let pos = cast(batch.column(1), &DataType::Int64).map_err(DataFusionError::from)?;
            let ordinal = cast(batch.column(2), &DataType::Int32).map_err(DataFusionError::from)?;
            let hit = batch.column(5).as_boolean();
            for r in 0..batch.num_rows() {
                let key = (
                    contig.as_string::<i32>().value(r).to_string(),
                    pos.as_primitive::<Int64Type>().value(r),
                    ordinal.as_primitive::<Int32Type>().value(r),
                );
                if hit.is_valid(r) && hit.value(r) {
                    matched.insert(key.clone());
                }
                rows.push((
                    key.0,
                    key.1,
                    key.2,
                    reference.as_string::<i32>().value(r).to_string(),
                    alt.as_string::<i32>().value(r).to_string(),
                ));
            }
        }
        let mut pass = SitePass::default();
        for (contig, pos, ordinal, reference, alt) in rows {
            let hit = matched.contains(&(contig.clone(), pos, ordinal));
            if hit == filter.include {
                pass.keep(contig, pos, reference, alt);
            }
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> HashMap<String, DataType> {
        let list = |t| {
            DataType::List(std::sync::Arc::new(
                datafusion::arrow::datatypes::Field::new("item", t, true),
            ))
        };
        HashMap::from([
            ("info_dp".to_string(), DataType::Int32),
            ("info_db".to_string(), DataType::Boolean),
            ("info_svlen".to_string(), list(DataType::Int32)),
            ("info_cs".to_string(), DataType::Utf8),
        ])
    }

    fn sql(text: &str) -> std::result::Result<String, String> {
        SiteFilter {
            include: true,
            expression: text.into(),
        }
        .sql(&columns())
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn variant_types_follow_htslib() {
        for (r, a, t) in [
            ("A", "G", "snp"),
            ("A", ".", "ref"),
            ("AAA", "AGA", "snp"),
            ("AC", "TG", "mnp"),
            ("GTC", "G", "indel"),
            ("G", "GTCT", "indel"),
            ("AC", "TGG", "other"),
            ("A", "<DEL>", "other"),
            ("A", "<NON_REF>", "ref"),
            ("G", "G]17:198982]", "bnd"),
            ("A", "*", "overlap"),
            ("acgt", "ACGA", "snp"),
        ] {
            assert_eq!(variant_type(r, a), t, "{r}>{a}");
        }
    }

    #[test]
    fn expressions_translate() {
        assert_eq!(
            sql("QUAL>30 && INFO/DP>=10").unwrap(),
            "((qual > 30) AND (info_dp >= 10))"
        );
        assert_eq!(sql("10<DP").unwrap(), "(info_dp > 10)");
        assert_eq!(
            sql("AF<0.01 || DB").unwrap(),
            "((cohort_af < 0.01) OR coalesce(info_db, false))"
        );
        assert_eq!(sql("QUAL=\".\"").unwrap(), "(qual IS NULL)");
        assert_eq!(sql("FILTER='.'").unwrap(), "(filters IS NULL)");
        assert!(
            sql("FILTER=\"PASS\"")
                .unwrap()
                .contains("array_has(string_to_array(filters, ';'), 'PASS')")
        );
        assert_eq!(
            sql("SVLEN < -100").unwrap(),
            "coalesce((array_min(info_svlen) < (-100)), false)"
        );
        assert_eq!(sql("CS=\"it's\"").unwrap(), "(info_cs = 'it''s')");
        assert_eq!(
            sql("!(DP>1) & N_ALT>1").unwrap(),
            "((NOT (info_dp > 1)) AND ((n_alleles - 1) > 1))"
        );
        for bad in [
            "",
            "DP >",
            "(DP>1",
            "FORMAT/DP>1",
            "XYZ>1",
            "strlen(REF)>1",
            "DP>1 DP",
            "\"abc",
            "DP $ 1",
        ] {
            assert!(sql(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            sql("XYZ>1")
                .unwrap_err()
                .contains("it keeps: cs db dp svlen")
        );
    }
}
