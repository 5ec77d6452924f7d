//! The mssql backend (not yet implemented; behind the `mssql` feature).
