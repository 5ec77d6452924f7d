//! The influxdb backend (not yet implemented; behind the `influxdb` feature).
