//! Settings shared by [`ZkServerBuilder`](super::ZkServerBuilder) and
//! [`ZkEnsembleBuilder`](super::ZkEnsembleBuilder), and the `zoo.cfg` / JVM flags they produce.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Builder settings common to a single server and an ensemble.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// ZooKeeper's `tickTime`.
    pub(crate) tick_time: Duration,
    /// `minSessionTimeout`; ZooKeeper's default is 2 ticks.
    pub(crate) min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; ZooKeeper's default is 20 ticks.
    pub(crate) max_session_timeout: Option<Duration>,
    /// Lines added to `zoo.cfg`; a key already present is replaced.
    pub(crate) extra_config: Vec<(String, String)>,
    /// Flags added to the JVM command line.
    pub(crate) jvm_args: Vec<String>,
    /// How long a start or restart may take.
    pub(crate) start_timeout: Duration,
    /// SASL (DIGEST-MD5) users and whether SASL is required.
    pub(crate) sasl: SaslUsers,
    /// A secure client port with these certificates.
    pub(crate) tls: Option<super::tls::ServerTls>,
}

/// The builder methods [`ZkServerBuilder`](super::ZkServerBuilder) and
/// [`ZkEnsembleBuilder`](super::ZkEnsembleBuilder) share, each setting a field of their
/// `opts: Options`. Used inside each builder's `impl` block.
macro_rules! option_setters {
    () => {
        /// The smallest session timeout the server grants (`minSessionTimeout`); every
        /// member's, for an ensemble.
        pub fn min_session_timeout(mut self, timeout: Duration) -> Self {
            self.opts.min_session_timeout = Some(timeout);
            self
        }

        /// The largest session timeout the server grants (`maxSessionTimeout`); every
        /// member's, for an ensemble.
        pub fn max_session_timeout(mut self, timeout: Duration) -> Self {
            self.opts.max_session_timeout = Some(timeout);
            self
        }

        /// Adds `key=value` to `zoo.cfg` (every member's, for an ensemble), replacing a line
        /// the harness writes itself.
        pub fn extra_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.opts.extra_config.push((key.into(), value.into()));
            self
        }

        /// Adds a flag to the JVM command line (every member's, for an ensemble), e.g.
        /// `-Dzookeeper.extendedTypesEnabled=true`.
        pub fn jvm_arg(mut self, arg: impl Into<String>) -> Self {
            self.opts.jvm_args.push(arg.into());
            self
        }

        /// Accepts SASL DIGEST-MD5 logins by `user` with `password` (repeat for more users):
        /// writes a JAAS file with a `Server` section for ZooKeeper's `DigestLoginModule` and
        /// enables the `sasl` ACL scheme. Sessions that do not authenticate are still served
        /// unless [`require_sasl`](Self::require_sasl) is set.
        pub fn sasl_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
            self.opts.sasl.users.push((user.into(), password.into()));
            self
        }

        /// Accepts SASL GSSAPI (Kerberos) logins through `kdc`: writes a JAAS `Server` section
        /// for the JDK's `Krb5LoginModule` with the service principal
        /// (`zookeeper/localhost`) and its keytab, points the JVM at the KDC's `krb5.conf`
        /// and enables the `sasl` ACL scheme. Replaces DIGEST-MD5 users, if any (a server
        /// speaks one SASL mechanism).
        pub fn kerberos(mut self, kdc: &super::kdc::Kdc) -> Self {
            self.opts.sasl.kerberos = Some(super::config::KerberosServer {
                principal: kdc.service_principal(),
                keytab: kdc.service_keytab(),
                krb5_conf: kdc.krb5_conf(),
            });
            self
        }

        /// With [`sasl_user`](Self::sasl_user) or [`kerberos`](Self::kerberos): refuse sessions that have not authenticated
        /// with SASL (`zookeeper.sessionRequireClientSASLAuth=true`): their first request is
        /// answered with `SessionClosedRequireSaslAuth` and the connection closed.
        pub fn require_sasl(mut self, required: bool) -> Self {
            self.opts.sasl.required = required;
            self
        }

        /// Also serves TLS on a secure client port (Netty connection factory; on every member,
        /// for an ensemble) with `material`'s server certificate, asking clients for
        /// certificates as `client_auth` says. The plain port stays (the harness probes it);
        /// the secure one is in `secure_connect_string()`.
        pub fn tls(mut self, material: &TlsMaterial, client_auth: TlsClientAuth) -> Self {
            self.opts.tls = Some(material.server_side(client_auth));
            self
        }

        /// How long `start` and `restart` wait for the server (or each member) to serve
        /// (default 60 s).
        pub fn start_timeout(mut self, timeout: Duration) -> Self {
            self.opts.start_timeout = timeout;
            self
        }
    };
}
pub(crate) use option_setters;

/// The SASL users a server accepts (written to a JAAS file). `Debug` leaves out the
/// passwords.
#[derive(Clone, Default)]
pub(crate) struct SaslUsers {
    pub(crate) users: Vec<(String, String)>,
    /// Kerberos (GSSAPI) instead of DIGEST-MD5 users.
    pub(crate) kerberos: Option<KerberosServer>,
    /// Sessions must authenticate with SASL (`zookeeper.sessionRequireClientSASLAuth`).
    pub(crate) required: bool,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslUsers")
            .field(
                "users",
                &self
                    .users
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("kerberos", &self.kerberos)
            .field("required", &self.required)
            .finish()
    }
}

/// The server side of Kerberos: its principal, its keytab and the realm's `krb5.conf`.
#[derive(Debug, Clone)]
pub(crate) struct KerberosServer {
    pub(crate) principal: String,
    pub(crate) keytab: PathBuf,
    pub(crate) krb5_conf: PathBuf,
}

/// Name of the JAAS file, in the data directory, of a server with SASL users.
pub(crate) const JAAS_FILE: &str = "jaas.conf";

impl SaslUsers {
    /// The JAAS file: a `Server` section for ZooKeeper's `DigestLoginModule`, one
    /// `user_<name>="<password>"` option per user. `None` without users.
    pub(crate) fn jaas_file(&self) -> Option<String> {
        if let Some(krb) = &self.kerberos {
            return Some(format!(
                "Server {{\n    com.sun.security.auth.module.Krb5LoginModule required\n    \
                 useKeyTab=true\n    storeKey=true\n    doNotPrompt=true\n    \
                 keyTab=\"{}\"\n    principal=\"{}\";\n}};\n",
                jaas_escape(&krb.keytab.display().to_string()),
                jaas_escape(&krb.principal)
            ));
        }
        if self.users.is_empty() {
            return None;
        }
        let mut out = String::from(
            "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required",
        );
        for (user, password) in &self.users {
            out.push_str(&format!("\n    user_{user}=\"{}\"", jaas_escape(password)));
        }
        out.push_str(";\n};\n");
        Some(out)
    }

    /// JVM flags that load the JAAS file in `dir` and enable the `sasl` ACL scheme.
    fn jvm_args(&self, dir: &Path) -> Vec<OsString> {
        if self.users.is_empty() && self.kerberos.is_none() {
            return Vec::new();
        }
        let mut login = OsString::from("-Djava.security.auth.login.config=");
        login.push(dir.join(JAAS_FILE).as_os_str());
        let mut args = vec![
            login,
            "-Dzookeeper.authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
                .into(),
        ];
        if self.required {
            args.push("-Dzookeeper.sessionRequireClientSASLAuth=true".into());
        }
        if let Some(krb) = &self.kerberos {
            let mut conf = OsString::from("-Djava.security.krb5.conf=");
            conf.push(krb.krb5_conf.as_os_str());
            args.push(conf);
        }
        args
    }
}

/// Escapes a value for a double-quoted JAAS option.
fn jaas_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick_time: Duration::from_millis(200),
            min_session_timeout: None,
            max_session_timeout: None,
            extra_config: Vec::new(),
            jvm_args: Vec::new(),
            start_timeout: Duration::from_secs(60),
            sasl: SaslUsers::default(),
            tls: None,
        }
    }
}

/// The JVM flags every server gets: small heap, quick start, quiet, no admin server; then the
/// builder's own flags, then the class path and the main class.
const BASE_JVM_ARGS: &[&str] = &[
    "-Xmx256m",
    "-Xms16m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    // No /tmp/hsperfdata_<user> file per JVM.
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.admin.enableServer=false",
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
];

/// ZooKeeper's entry point for both standalone servers and quorum peers.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

impl Options {
    /// `zoo.cfg` lines every server gets, standalone or not.
    pub(crate) fn common_config(&self, data_dir: &str, client_port: u16) -> Vec<(String, String)> {
        let mut cfg = vec![
            kv("tickTime", self.tick_time.as_millis()),
            kv("dataDir", data_dir),
            kv("clientPort", client_port),
            kv("clientPortAddress", "127.0.0.1"),
            kv("4lw.commands.whitelist", "*"),
            kv("admin.enableServer", "false"),
            // Tests do not survive power loss: skip fsync, and keep log files small.
            kv("forceSync", "no"),
            kv("preAllocSize", 1024),
        ];
        if let Some(min) = self.min_session_timeout {
            cfg.push(kv("minSessionTimeout", min.as_millis()));
        }
        if let Some(max) = self.max_session_timeout {
            cfg.push(kv("maxSessionTimeout", max.as_millis()));
        }
        cfg
    }

    /// Renders `zoo.cfg`: `base`, with keys from `extra_config` replacing equal keys in place
    /// and the others appended.
    pub(crate) fn render(&self, mut base: Vec<(String, String)>) -> String {
        for (key, value) in &self.extra_config {
            match base.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1.clone_from(value),
                None => base.push((key.clone(), value.clone())),
            }
        }
        base.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// The java command line after `java`, ending with the config file.
    pub(crate) fn java_args(&self, classpath: &OsStr, config_file: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = BASE_JVM_ARGS.iter().map(OsString::from).collect();
        if let Some(dir) = config_file.parent() {
            args.extend(self.sasl.jvm_args(dir));
        }
        args.extend(self.jvm_args.iter().map(OsString::from));
        args.push("-cp".into());
        args.push(classpath.to_owned());
        args.push(MAIN_CLASS.into());
        args.push(config_file.as_os_str().to_owned());
        args
    }
}

/// One `key=value` line.
pub(crate) fn kv(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_file_lists_users_with_escaped_passwords() {
        let sasl = SaslUsers {
            users: vec![
                ("bob".into(), "hunter2".into()),
                ("eve".into(), "a\"b\\c".into()),
            ],
            required: true,
            kerberos: None,
        };
        assert_eq!(
            sasl.jaas_file().unwrap(),
            "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
             user_bob=\"hunter2\"\n    user_eve=\"a\\\"b\\\\c\";\n};\n"
        );
        let args = sasl.jvm_args(Path::new("/data"));
        assert_eq!(args[0], "-Djava.security.auth.login.config=/data/jaas.conf");
        assert!(
            args.iter()
                .any(|a| a == "-Dzookeeper.sessionRequireClientSASLAuth=true")
        );
        assert!(!format!("{sasl:?}").contains("hunter2"));
        assert_eq!(SaslUsers::default().jaas_file(), None);
        let kerberos = SaslUsers {
            kerberos: Some(KerberosServer {
                principal: "zookeeper/localhost@R".into(),
                keytab: "/k/zk.keytab".into(),
                krb5_conf: "/k/krb5.conf".into(),
            }),
            ..SaslUsers::default()
        };
        let jaas = kerberos.jaas_file().unwrap();
        assert!(jaas.contains("Krb5LoginModule required"), "{jaas}");
        assert!(jaas.contains("keyTab=\"/k/zk.keytab\""), "{jaas}");
        assert!(
            jaas.contains("principal=\"zookeeper/localhost@R\";"),
            "{jaas}"
        );
        let args = kerberos.jvm_args(Path::new("/data"));
        assert!(
            args.iter()
                .any(|a| a == "-Djava.security.krb5.conf=/k/krb5.conf")
        );
        assert!(SaslUsers::default().jvm_args(Path::new("/data")).is_empty());
    }
}
