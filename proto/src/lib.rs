//! `cohortdb.v1` protocol definitions: generated tonic/prost code and conversions only. Empty
//! until the serving work adds the `.proto` files.
