//! The raw values of one INFO (or FORMAT) key, as parsed from a VCF or BCF record.

/// Raw values of one INFO key at one site.
#[derive(Debug, Clone, PartialEq)]
pub enum InfoValues {
    /// A flag is present.
    Flag,
    /// Integers (`None` = `.`).
    Int(Vec<Option<i32>>),
    /// Floats.
    Float(Vec<Option<f32>>),
    /// Strings.
    Text(Vec<Option<String>>),
}
