//! A throwaway MIT Kerberos KDC on loopback, for tests of Kerberos (SASL GSSAPI) clients.
//!
//! [`Kdc::start_in`] makes a realm in a directory (`kdb5_util`), adds the ZooKeeper service
//! principal `zookeeper/localhost` and a client principal with keytabs (`kadmin.local`), and
//! runs `krb5kdc` on a free `127.0.0.1` port (TCP; clients are told to prefer it). Everything
//! lives in that directory: `krb5.conf` for clients, `kdc.conf` for the KDC, the database,
//! the keytabs and `kdc.log`. The KDC dies with the test process, as a ZooKeeper JVM does.
//!
//! The Kerberos library of a client reads its settings from the environment (`KRB5_CONFIG`,
//! `KRB5CCNAME`), which a process cannot safely change for itself once threads run: a test
//! that authenticates in-process sets [`Kdc::client_env`] on a child process (for example
//! itself, re-run with the test's name) before it starts. Debian's `krb5-kdc`,
//! `krb5-admin-server` and `krb5-user` packages provide the programs
//! (`scripts/install-zookeeper.sh --with-kerberos`).

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::error::TestingError;
use super::ports;
use super::process::{JvmProcess, Launch};

/// The realm every test KDC serves.
pub const TEST_REALM: &str = "ZKWARDEN.TEST";
/// The ZooKeeper service principal (without the realm) the KDC is made with.
pub const SERVICE_PRINCIPAL: &str = "zookeeper/localhost";
/// The client principal (without the realm) the KDC is made with.
pub const CLIENT_PRINCIPAL: &str = "zkclient";

/// How long the KDC may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Enctypes both MIT Kerberos and the JDK speak.
const ENCTYPES: &str = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96";
/// Where Debian installs the programs.
const SBIN: &str = "/usr/sbin";
const INSTALL_HINT: &str = "install Debian's krb5-kdc, krb5-admin-server and krb5-user \
     (scripts/install-zookeeper.sh --with-kerberos)";

/// A running test KDC. Dropping it stops the KDC; the directory stays with whoever made it
/// (it may hold the tests' credential caches too).
#[derive(Debug)]
pub struct Kdc {
    dir: PathBuf,
    port: u16,
    process: JvmProcess,
}

impl Kdc {
    /// Makes the realm [`TEST_REALM`] in `dir` (which must exist), with principals
    /// `zookeeper/localhost` and `zkclient` and their keytabs, and starts the KDC. Returns
    /// once it accepts connections.
    ///
    /// # Errors
    ///
    /// [`TestingError::Io`] when a Kerberos program is missing (naming the packages to
    /// install) or fails (with its output), or the KDC does not listen in time.
    pub fn start_in(dir: &Path) -> Result<Kdc, TestingError> {
        let port = ports::free_port()?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))
        };
        write("krb5.conf", krb5_conf(port))?;
        write("kdc.conf", kdc_conf(dir, port))?;
        write("kadm5.acl", String::new())?;
        let admin = KdcAdmin { dir };
        admin.run(
            "kdb5_util",
            &[
                "create",
                "-s",
                "-r",
                TEST_REALM,
                "-P",
                "zkwarden-test-master",
            ],
        )?;
        for (principal, keytab) in [
            (SERVICE_PRINCIPAL, "zookeeper.keytab"),
            (CLIENT_PRINCIPAL, "client.keytab"),
        ] {
            admin.add_principal(principal, &dir.join(keytab))?;
        }
        let mut args: Vec<OsString> = env_assignments(&kdc_env(dir));
        args.extend([sbin("krb5kdc").into_os_string(), "-n".into()]);
        let launch = Launch {
            java: PathBuf::from("/usr/bin/env"),
            args,
            log_path: dir.join("krb5kdc.out"),
            work_dir: dir.to_path_buf(),
        };
        let mut process = JvmProcess::spawn(&launch, true)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if !process.is_running() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(dir.join("krb5kdc.out")).unwrap_or_default();
                return Err(TestingError::io(
                    "starting krb5kdc",
                    std::io::Error::other(format!("the KDC did not listen on {addr}: {log}")),
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
        Ok(Kdc {
            dir: dir.to_path_buf(),
            port,
            process,
        })
    }

    /// The KDC's port on `127.0.0.1` (TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client configuration file (`KRB5_CONFIG`, or the JDK's
    /// `-Djava.security.krb5.conf`).
    pub fn krb5_conf(&self) -> PathBuf {
        krb5_conf_path(&self.dir)
    }

    /// The ZooKeeper service principal with its realm: `zookeeper/localhost@ZKWARDEN.TEST`.
    pub fn service_principal(&self) -> String {
        format!("{SERVICE_PRINCIPAL}@{TEST_REALM}")
    }

    /// The keytab holding the service principal's keys, for the server's JAAS file.
    pub fn service_keytab(&self) -> PathBuf {
        self.dir.join("zookeeper.keytab")
    }

    /// The client principal with its realm: `zkclient@ZKWARDEN.TEST`.
    pub fn client_principal(&self) -> String {
        format!("{CLIENT_PRINCIPAL}@{TEST_REALM}")
    }

    /// The keytab holding the client principal's keys.
    pub fn client_keytab(&self) -> PathBuf {
        self.dir.join("client.keytab")
    }

    /// Adds principal `name` (random keys) and writes its keys to `keytab`.
    ///
    /// # Errors
    ///
    /// [`TestingError::Io`] when `kadmin.local` fails.
    pub fn add_principal(&self, name: &str, keytab: &Path) -> Result<(), TestingError> {
        KdcAdmin { dir: &self.dir }.add_principal(name, keytab)
    }

    /// Gets a ticket for the client principal from its keytab into the credential cache
    /// `ccache` (a path), valid for `lifetime` (`kinit -k -l`). Kerberos counts lifetimes in
    /// seconds; the KDC grants at most an hour.
    ///
    /// # Errors
    ///
    /// [`TestingError::Io`] when `kinit` fails.
    pub fn kinit(&self, ccache: &Path, lifetime: Duration) -> Result<(), TestingError> {
        let lifetime = format!("{}s", lifetime.as_secs().max(1));
        let mut cache = OsString::from("FILE:");
        cache.push(ccache);
        let keytab = self.client_keytab();
        run(
            Command::new("kinit")
                .args(["-k", "-l", &lifetime, "-t"])
                .arg(&keytab)
                .arg("-c")
                .arg(&cache)
                .arg(self.client_principal())
                .envs(Kdc::client_env(&self.dir)),
            "kinit",
        )
    }

    /// The environment a client process needs to use a KDC made in `dir`: `KRB5_CONFIG`
    /// pointing at its `krb5.conf`. Callable before the KDC starts (its `krb5.conf` is
    /// read when Kerberos is first used).
    pub fn client_env(dir: &Path) -> Vec<(&'static str, OsString)> {
        vec![("KRB5_CONFIG", krb5_conf_path(dir).into_os_string())]
    }

    /// True while the KDC runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// Runs the database programs against the realm in `dir`.
struct KdcAdmin<'a> {
    dir: &'a Path,
}

impl KdcAdmin<'_> {
    fn run(&self, program: &str, args: &[&str]) -> Result<(), TestingError> {
        run(
            Command::new(sbin(program))
                .args(args)
                .envs(kdc_env(self.dir)),
            program,
        )
    }

    fn add_principal(&self, name: &str, keytab: &Path) -> Result<(), TestingError> {
        self.run(
            "kadmin.local",
            &["-q", &format!("addprinc -randkey {name}")],
        )?;
        let keytab = keytab.display().to_string();
        self.run(
            "kadmin.local",
            &["-q", &format!("ktadd -k {keytab} -norandkey {name}")],
        )
    }
}

/// Runs `command` to completion; its output becomes the error when it fails.
fn run(command: &mut Command, name: &str) -> Result<(), TestingError> {
    let output = command.output().map_err(|e| {
        let kind = e.kind();
        TestingError::io(
            format!("running {name}"),
            std::io::Error::new(kind, format!("{e}; {INSTALL_HINT}")),
        )
    })?;
    // kadmin.local reports some failures on stderr with status 0.
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() && !stderr.contains("error") {
        return Ok(());
    }
    Err(TestingError::io(
        format!("running {name}"),
        std::io::Error::other(format!(
            "{}: {}{stderr}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        )),
    ))
}

fn sbin(program: &str) -> PathBuf {
    Path::new(SBIN).join(program)
}

fn krb5_conf_path(dir: &Path) -> PathBuf {
    dir.join("krb5.conf")
}

/// The environment of the KDC and its database programs.
fn kdc_env(dir: &Path) -> Vec<(&'static str, OsString)> {
    let mut env = Kdc::client_env(dir);
    env.push(("KRB5_KDC_PROFILE", dir.join("kdc.conf").into_os_string()));
    env
}

/// `NAME=value` words for `env`.
fn env_assignments(env: &[(&str, OsString)]) -> Vec<OsString> {
    env.iter()
        .map(|(name, value)| {
            let mut word = OsString::from(format!("{name}="));
            word.push(value);
            word
        })
        .collect()
}

/// Client settings: the realm's KDC on loopback, over TCP (`udp_preference_limit`, which the
/// JDK honours too); no DNS for realms, KDCs or host
/// names, so `zookeeper@localhost` is `zookeeper/localhost` on every machine.
fn krb5_conf(port: u16) -> String {
    format!(
        "[libdefaults]
    default_realm = {TEST_REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    ticket_lifetime = 1h
    forwardable = false
    default_tkt_enctypes = {ENCTYPES}
    default_tgs_enctypes = {ENCTYPES}
    permitted_enctypes = {ENCTYPES}

[realms]
    {TEST_REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {TEST_REALM}
"
    )
}

/// KDC settings: TCP only, everything in `dir`.
fn kdc_conf(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "[kdcdefaults]
    kdc_listen = \"\"
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {TEST_REALM} = {{
        database_name = {dir}/principal
        key_stash_file = {dir}/stash
        acl_file = {dir}/kadm5.acl
        max_life = 1h
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{dir}/kdc.log
"
    )
}
