//! Integration tests: the real server on port 0, the real binary, SQLite and PostgreSQL (127.0.0.1:5432),
//! real sockets and real peers (promtool).

mod helpers;

mod api_agents;
mod api_numbers;
mod api_records;
mod calcom;
mod calcom_double;
mod calendars;
mod cli;
mod dialplan;
mod metrics;
mod secrets;
mod sip;
mod softphone;
mod store;
