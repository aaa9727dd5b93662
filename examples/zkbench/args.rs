//! The command line. Hand-parsed: the benchmark should not drag in an argument parser.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub(crate) const USAGE: &str = "\
usage: zkbench --connect HOST:PORT --workload W --n N [--inflight K] [--size BYTES]
               [--client zkwarden|peer|raw] [--runtime current|multi] [--count-allocs]
               [--timeout SECS] [--raw-batch K]

workloads (each under a fresh root node, removed afterwards):
  connect       open a session, wait until connected, close it; N times
  get_seq       N get_data calls on one node, one after another
  get_pipe      N get_data calls, up to K (--inflight, default 1000) in flight
  set_pipe      N set_data calls, up to K in flight
  create_seq    N persistent creates in sequence, then N deletes (2N ops)
  watch_fanout  session A watches a node, session B changes it; N rounds

options:
  --size BYTES     data size of the node (default 100)
  --client C       zkwarden (default), peer (the zookeeper-client crate) or raw (no
                   library: a bare pipelined socket, the server's ceiling; get_pipe and
                   set_pipe only)
  --runtime R      tokio runtime: current (default) or multi (2 workers)
  --count-allocs   add allocs_per_op and alloc_bytes_per_op to the report
  --timeout SECS   give up after this long (default 900)
  --raw-batch K    raw client only: at most K requests per write (default 0: everything
                   the in-flight limit allows in one write); K=1 writes each request on
                   its own, as the C and Java clients do

Prints one JSON line on stdout; errors go to stderr with a non-zero exit.";

/// A workload named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    Connect,
    GetSeq,
    GetPipe,
    SetPipe,
    CreateSeq,
    WatchFanout,
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Connect,
        Workload::GetSeq,
        Workload::GetPipe,
        Workload::SetPipe,
        Workload::CreateSeq,
        Workload::WatchFanout,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Connect => "connect",
            Workload::GetSeq => "get_seq",
            Workload::GetPipe => "get_pipe",
            Workload::SetPipe => "set_pipe",
            Workload::CreateSeq => "create_seq",
            Workload::WatchFanout => "watch_fanout",
        }
    }
}

/// Which client runs the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    Zkwarden,
    Peer,
    /// No client library: the server's own ceiling (`raw.rs`).
    Raw,
}

impl ClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClientKind::Zkwarden => "zkwarden",
            ClientKind::Peer => "peer",
            ClientKind::Raw => "raw",
        }
    }
}

/// Which tokio runtime both the client and the workload run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuntimeKind {
    Current,
    Multi,
}

impl RuntimeKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RuntimeKind::Current => "current",
            RuntimeKind::Multi => "multi",
        }
    }
}

/// Everything the command line says.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub connect: String,
    pub workload: Workload,
    pub n: usize,
    pub inflight: usize,
    pub size: usize,
    pub client: ClientKind,
    pub runtime: RuntimeKind,
    pub count_allocs: bool,
    pub timeout: Duration,
    /// `--raw-batch`: the raw client's most requests per write (0: no cap).
    pub raw_batch: usize,
}

/// Why the command line was refused (or that help was asked for).
#[derive(Debug)]
pub(crate) enum ArgsError {
    Help,
    Bad(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str("help requested"),
            ArgsError::Bad(msg) => f.write_str(msg),
        }
    }
}

fn bad(msg: impl Into<String>) -> ArgsError {
    ArgsError::Bad(msg.into())
}

fn one_of<T: Copy>(flag: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ArgsError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            bad(format!(
                "{flag}: unknown value '{value}' (expected one of: {})",
                names.join(", ")
            ))
        })
}

fn number<T>(flag: &str, value: &str, min: T, max: T) -> Result<T, ArgsError>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    let parsed: T = value
        .parse()
        .map_err(|_| bad(format!("{flag}: '{value}' is not a whole number")))?;
    if parsed < min || parsed > max {
        return Err(bad(format!(
            "{flag}: {parsed} is out of range ({min} to {max})"
        )));
    }
    Ok(parsed)
}

impl Args {
    /// Parses the arguments after the program name. Accepts `--flag value` and `--flag=value`.
    pub(crate) fn parse(raw: impl IntoIterator<Item = String>) -> Result<Args, ArgsError> {
        let mut connect = None;
        let mut workload = None;
        let mut n = None;
        let mut inflight = 1000;
        let mut size = 100;
        let mut client = ClientKind::Zkwarden;
        let mut runtime = RuntimeKind::Current;
        let mut count_allocs = false;
        let mut timeout_secs = 900u64;
        let mut raw_batch = 0usize;

        let mut raw = raw.into_iter();
        while let Some(arg) = raw.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            match flag.as_str() {
                "-h" | "--help" => return Err(ArgsError::Help),
                "--count-allocs" => {
                    if inline.is_some() {
                        return Err(bad("--count-allocs takes no value"));
                    }
                    count_allocs = true;
                    continue;
                }
                _ => {}
            }
            let mut value = || -> Result<String, ArgsError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => raw
                        .next()
                        .ok_or_else(|| bad(format!("{flag} needs a value"))),
                }
            };
            match flag.as_str() {
                "--connect" => {
                    let v = value()?;
                    if v.trim().is_empty() {
                        return Err(bad("--connect must not be empty"));
                    }
                    connect = Some(v);
                }
                "--workload" => {
                    let v = value()?;
                    let choices: Vec<(&str, Workload)> =
                        Workload::ALL.iter().map(|w| (w.name(), *w)).collect();
                    workload = Some(one_of("--workload", &v, &choices)?);
                }
                "--n" => n = Some(number("--n", &value()?, 1usize, 1_000_000_000)?),
                "--inflight" => inflight = number("--inflight", &value()?, 1usize, 1_000_000)?,
                "--size" => size = number("--size", &value()?, 0usize, 1_000_000)?,
                "--client" => {
                    client = one_of(
                        "--client",
                        &value()?,
                        &[
                            ("zkwarden", ClientKind::Zkwarden),
                            ("peer", ClientKind::Peer),
                            ("raw", ClientKind::Raw),
                        ],
                    )?
                }
                "--runtime" => {
                    runtime = one_of(
                        "--runtime",
                        &value()?,
                        &[
                            ("current", RuntimeKind::Current),
                            ("multi", RuntimeKind::Multi),
                        ],
                    )?
                }
                "--timeout" => timeout_secs = number("--timeout", &value()?, 1u64, 86_400)?,
                "--raw-batch" => raw_batch = number("--raw-batch", &value()?, 0usize, 1_000_000)?,
                other => return Err(bad(format!("unknown argument '{other}'"))),
            }
        }

        Ok(Args {
            connect: connect.ok_or_else(|| bad("--connect HOST:PORT is required"))?,
            workload: workload.ok_or_else(|| bad("--workload is required"))?,
            n: n.ok_or_else(|| bad("--n is required"))?,
            inflight,
            size,
            client,
            runtime,
            count_allocs,
            timeout: Duration::from_secs(timeout_secs),
            raw_batch,
        })
    }
}
