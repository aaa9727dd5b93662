//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `--help` says about exit codes; the numbers are the constants in [`crate::exit`].
const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  ZooKeeper refused the operation (NoNode, NodeExists, BadVersion, NotEmpty, NoAuth, ...)
  2  usage error: bad arguments, an invalid path, an unreadable or invalid file
  3  connection or session failure: no server answered in time, the session expired
  4  lock / leader: the lock or leadership was lost, and COMMAND was stopped
  5  lock / leader: not acquired within --wait
  Otherwise lock and leader exit with COMMAND's status (128+N when it died of signal N).

Connecting: --connect HOST:PORT[,HOST:PORT...][/chroot], or the ZK_CONNECT environment
variable, or --config FILE (a warden config: JSON if its name ends in .json, else TOML;
--connect or ZK_CONNECT then replaces its servers).";

/// A ZooKeeper command line for operators and chaos testers.
#[derive(Debug, Parser)]
#[command(name = "zkwarden", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Servers: HOST:PORT[,HOST:PORT...][/chroot].
    #[arg(long, short = 'c', env = "ZK_CONNECT", global = true)]
    pub connect: Option<String>,
    /// A warden config file (JSON if named *.json, else TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON (one document, or one line per event) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long to wait for a connected session (default 10s, or the config file's).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// The session timeout to ask for (default 10s, or the config file's).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub session_timeout: Option<Duration>,
}

/// Parses `250ms`, `2s`, `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 500ms, 2s, 1m)"))
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the children of a node.
    Ls {
        /// The node.
        path: String,
    },
    /// Print a node's data (base64 when it is not UTF-8 text).
    Get {
        /// The node.
        path: String,
        /// Also print the node's stat.
        #[arg(long)]
        stat: bool,
    },
    /// Set a node's data.
    Set {
        /// The node.
        path: String,
        /// The new data.
        data: String,
        /// Only if the node is at this version (compare-and-set).
        #[arg(long)]
        version: Option<i32>,
        /// DATA is base64 (for binary data).
        #[arg(long)]
        base64: bool,
    },
    /// Create a node.
    Create {
        /// The node (for sequential modes, the prefix).
        path: String,
        /// Its data (default empty).
        #[arg(default_value = "")]
        data: String,
        /// What kind of node.
        #[arg(long, value_enum, default_value_t = Mode::Persistent)]
        mode: Mode,
        /// Time to live, for the ttl modes (the server needs extendedTypesEnabled=true).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        ttl: Option<Duration>,
        /// Create missing parents (as persistent nodes).
        #[arg(short = 'p', long)]
        parents: bool,
        /// DATA is base64 (for binary data).
        #[arg(long)]
        base64: bool,
    },
    /// Delete a node.
    Rm {
        /// The node.
        path: String,
        /// Also delete everything below it.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// Only if the node is at this version.
        #[arg(long, conflicts_with = "recursive")]
        version: Option<i32>,
    },
    /// Print a node's stat.
    Stat {
        /// The node.
        path: String,
    },
    /// Print a subtree.
    Tree {
        /// The top of the subtree.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Wait for changes and print them, one line each.
    Watch {
        /// The node.
        path: String,
        /// Watch everything below PATH too (a persistent recursive watch) and keep streaming.
        #[arg(long, short = 'r')]
        recursive: bool,
        /// Watch PATH's children list instead of its data (one-shot mode).
        #[arg(long, conflicts_with = "recursive")]
        children: bool,
        /// Stop after this many events (one-shot mode: default 1, re-armed after each).
        #[arg(long, short = 'n')]
        count: Option<u64>,
    },
    /// Write a subtree as JSON (data as text when UTF-8, else base64).
    Dump {
        /// The top of the subtree.
        path: String,
        /// Write here instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create the nodes of a dump.
    Restore {
        /// A file written by `dump` (`-` for standard input).
        file: PathBuf,
        /// Restore under this path instead of the dump's own root.
        #[arg(long, value_name = "PATH")]
        to: Option<String>,
        /// Set the data of nodes that already exist instead of failing.
        #[arg(long)]
        overwrite: bool,
    },
    /// Run COMMAND while holding a lock (Curator's InterProcessMutex layout).
    ///
    /// COMMAND's environment has the fencing token (ZKWARDEN_FENCE, or --fence-env), the lock
    /// node (ZKWARDEN_NODE) and the holder's session id (ZKWARDEN_SESSION). When the lock may
    /// be lost (the connection is suspended, the session expires, the node is deleted),
    /// COMMAND gets SIGTERM, then SIGKILL after --grace, and zkwarden exits 4. Otherwise it
    /// exits with COMMAND's status, after releasing the lock.
    Lock(LockArgs),
    /// Run COMMAND only while leader (Curator's LeaderLatch layout).
    ///
    /// COMMAND starts once this participant leads, with the same environment as for `lock`
    /// (ZKWARDEN_FENCE, ZKWARDEN_NODE, ZKWARDEN_SESSION), and is stopped the same way when
    /// leadership is lost (exit 4). When COMMAND exits, zkwarden leaves the election and
    /// exits with its status.
    Leader(LeaderArgs),
    /// Break things on purpose: expire sessions, run a fault proxy.
    #[command(subcommand)]
    Chaos(Chaos),
    /// Ask a server a four-letter word (parsed to JSON with --json).
    #[command(name = "4lw")]
    FourLetter {
        /// The word.
        #[arg(value_enum)]
        word: Word,
        /// The server (default: the first of --connect / the config).
        #[arg(long, value_name = "HOST:PORT")]
        server: Option<String>,
    },
    /// Warden config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Node kinds for `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Lives until deleted.
    Persistent,
    /// Persistent, with a sequence number appended.
    PersistentSequential,
    /// Deleted with the session (at once, for this command: it exits).
    Ephemeral,
    /// Ephemeral, with a sequence number appended.
    EphemeralSequential,
    /// Deleted by the server once its last child is gone.
    Container,
    /// Deleted by the server after --ttl without changes or children.
    Ttl,
    /// Ttl, with a sequence number appended.
    TtlSequential,
}

/// How to stop COMMAND, and the command itself.
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// After SIGTERM, how long COMMAND has to exit before SIGKILL.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub grace: Duration,
    /// Give up (exit 5) when not acquired within this long.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<Duration>,
    /// The environment variable that carries the fencing token.
    #[arg(long, default_value = "ZKWARDEN_FENCE", value_name = "NAME")]
    pub fence_env: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `zkwarden lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's path (the parent of the contender nodes).
    pub path: String,
    /// The COMMAND to run, and how to stop it.
    #[command(flatten)]
    pub child: ChildArgs,
}

/// `zkwarden leader`.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// The latch's path (the parent of the participant nodes).
    pub path: String,
    /// This participant's id (default host:pid).
    #[arg(long)]
    pub id: Option<String>,
    /// The COMMAND to run, and how to stop it.
    #[command(flatten)]
    pub child: ChildArgs,
}

/// `zkwarden chaos ...`.
#[derive(Debug, Subcommand)]
pub enum Chaos {
    /// Expire a session on the server, as an outage would (its ephemeral nodes go at once).
    Expire(ExpireArgs),
    /// Run a fault proxy; switch it with lines on standard input (or a --control port): pass,
    /// latency MS, blackhole, drop-replies, reset, refuse, accept, stats, quit.
    Proxy {
        /// Where clients connect (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// The server behind the proxy.
        #[arg(long)]
        upstream: String,
        /// Also take command lines on this TCP address (each connection gets answers; `quit`
        /// stops the proxy, and the end of standard input no longer does).
        #[arg(long, value_name = "HOST:PORT")]
        control: Option<String>,
    },
}

/// Which session `chaos expire` ends.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ExpireArgs {
    /// A session id (0x... hex, as ZooKeeper prints them, or decimal).
    #[arg(long)]
    pub session: Option<String>,
    /// The session holding the lock at this path (the first contender).
    #[arg(long, value_name = "PATH")]
    pub lock_holder: Option<String>,
    /// The session owning this ephemeral node.
    #[arg(long, value_name = "PATH")]
    pub owner_of: Option<String>,
}

/// Four-letter words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Word {
    /// Monitoring figures (key/value).
    Mntr,
    /// Server details.
    Srvr,
    /// Connections and sessions.
    Cons,
    /// "Are you ok?"
    Ruok,
    /// Server details and clients.
    Stat,
    /// The server's configuration.
    Conf,
}

/// `zkwarden config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a warden config and show its retry schedule and worst case.
    Check {
        /// The file (JSON if named *.json, else TOML).
        file: PathBuf,
    },
}
