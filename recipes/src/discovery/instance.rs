//! [`ServiceInstance`]: one registered instance of a service, and its JSON form, which is
//! byte for byte what Curator's `JsonInstanceSerializer` writes.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zkwarden::{Error, Result};

/// How an instance is registered (Curator's `ServiceType`; the JSON holds the upper-case
/// name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    /// An ephemeral node at `base/name/id`: gone with the session, registered again on the
    /// next one.
    #[default]
    Dynamic,
    /// A persistent node: stays until unregistered.
    Static,
    /// A persistent node, as `Static` (Curator makes no difference when registering).
    Permanent,
    /// An ephemeral sequential node `base/name/<id><sequence>`.
    DynamicSequential,
}

impl ServiceType {
    /// Whether instances of this type live only as long as their session (Curator's
    /// `isDynamic`).
    pub fn is_dynamic(self) -> bool {
        matches!(self, ServiceType::Dynamic | ServiceType::DynamicSequential)
    }
}

/// One piece of a [`UriSpec`]: literal text, or the name of a variable in `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UriPart {
    /// The text, or the variable's name.
    #[serde(default)]
    pub value: String,
    /// Whether `value` names a variable.
    #[serde(default)]
    pub variable: bool,
}

/// A URI template such as `{scheme}://{address}:{port}/api` (Curator's `UriSpec`), kept as
/// its parts, which is how the JSON holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UriSpec {
    /// The parts in order.
    #[serde(default)]
    pub parts: Vec<UriPart>,
}

impl UriSpec {
    /// Parses a template: text in `{}` names a variable (trimmed), the rest is literal.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `{` inside a variable, a `}` outside one, or an
    /// unclosed variable (Curator refuses the same).
    pub fn parse(spec: &str) -> Result<UriSpec> {
        let mut parts = Vec::new();
        let mut inside = false;
        let mut text = String::new();
        let flush = |text: &mut String, inside: bool, parts: &mut Vec<UriPart>| {
            if !text.is_empty() {
                let value = if inside {
                    text.trim().to_owned()
                } else {
                    text.clone()
                };
                parts.push(UriPart {
                    value,
                    variable: inside,
                });
                text.clear();
            }
        };
        for c in spec.chars() {
            match c {
                '{' if inside => {
                    return Err(Error::InvalidArgument(format!(
                        "uri spec {spec:?}: '{{' inside a variable"
                    )));
                }
                '}' if !inside => {
                    return Err(Error::InvalidArgument(format!(
                        "uri spec {spec:?}: '}}' without '{{'"
                    )));
                }
                '{' | '}' => {
                    flush(&mut text, inside, &mut parts);
                    inside = !inside;
                }
                other => text.push(other),
            }
        }
        if inside {
            return Err(Error::InvalidArgument(format!(
                "uri spec {spec:?}: variable not closed"
            )));
        }
        flush(&mut text, inside, &mut parts);
        Ok(UriSpec { parts })
    }

    /// Fills the template with `instance`'s fields (`scheme` is `https` when it has an SSL
    /// port, else `http`; `name`, `id`, `address`, `port`, `ssl-port`,
    /// `registration-time-utc`, `service-type`, missing ones empty; `[` and `]` stand for
    /// literal braces), then
    /// with `variables`, which take precedence. Unknown variables become empty.
    pub fn build<P>(
        &self,
        instance: Option<&ServiceInstance<P>>,
        variables: &HashMap<String, String>,
    ) -> String {
        let mut known: HashMap<&str, String> = HashMap::new();
        known.insert("[", "{".to_owned());
        known.insert("]", "}".to_owned());
        known.insert("scheme", "http".to_owned());
        if let Some(i) = instance {
            // Curator puts an empty string for a missing value.
            let text = |v: Option<String>| v.unwrap_or_default();
            known.insert("name", i.name.clone());
            known.insert("id", i.id.clone());
            known.insert("address", text(i.address.clone()));
            known.insert("port", text(i.port.map(|p| p.to_string())));
            known.insert("ssl-port", text(i.ssl_port.map(|p| p.to_string())));
            known.insert("registration-time-utc", i.registration_time_utc.to_string());
            let kind = serde_json::to_value(i.service_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_lowercase))
                .unwrap_or_default();
            known.insert("service-type", kind);
            if i.ssl_port.is_some() {
                known.insert("scheme", "https".to_owned());
            }
        }
        let mut out = String::new();
        for part in &self.parts {
            if !part.variable {
                out.push_str(&part.value);
            } else if let Some(value) = variables.get(&part.value) {
                out.push_str(value);
            } else if let Some(value) = known.get(part.value.as_str()) {
                out.push_str(value);
            }
        }
        out
    }
}

/// One instance of a service, as Curator's `ServiceInstance<T>`: registered at
/// `base/<name>/<id>` with its JSON ([`to_json`](Self::to_json)) as the node's data.
///
/// `P` is the payload, any serde type. Curator writes an object payload with its Java class
/// in an `"@class"` member (`{"@class":"java.util.HashMap","k":"v"}`) and reads payloads of
/// the class it was built for; a Rust payload meant for Curator carries that member itself
/// (a field renamed `@class`), and one read from Curator may ignore it. Strings, numbers
/// and booleans need no class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance<P> {
    /// The service's name (the node's parent).
    #[serde(default)]
    pub name: String,
    /// This instance's id, unique within the service (the node's name).
    #[serde(default)]
    pub id: String,
    /// Host or IP address.
    #[serde(default)]
    pub address: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<i32>,
    /// TLS port.
    #[serde(default)]
    pub ssl_port: Option<i32>,
    /// Whatever the service publishes besides.
    #[serde(default = "none")]
    pub payload: Option<P>,
    /// Milliseconds since the Unix epoch at registration.
    #[serde(default, rename = "registrationTimeUTC")]
    pub registration_time_utc: i64,
    /// How the instance is registered.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Template of the instance's URI.
    #[serde(default)]
    pub uri_spec: Option<UriSpec>,
    /// `false` marks the instance down without unregistering it: providers skip it.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn none<P>() -> Option<P> {
    None
}

fn yes() -> bool {
    true
}

/// The JSON written in Curator's compatible mode (its default): every field but `enabled`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Compatible<'a, P> {
    name: &'a str,
    id: &'a str,
    address: &'a Option<String>,
    port: Option<i32>,
    ssl_port: Option<i32>,
    payload: &'a Option<P>,
    #[serde(rename = "registrationTimeUTC")]
    registration_time_utc: i64,
    service_type: ServiceType,
    uri_spec: &'a Option<UriSpec>,
}

impl<P> ServiceInstance<P> {
    /// A `Dynamic`, enabled instance of `name` with a fresh random id, registered now, with
    /// no address, ports, payload or URI spec (set the fields, or use the `with_` methods).
    pub fn new(name: impl Into<String>) -> ServiceInstance<P> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ServiceInstance {
            name: name.into(),
            id: crate::barrier::random_uuid(),
            address: None,
            port: None,
            ssl_port: None,
            payload: None,
            registration_time_utc: now,
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: true,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the address and port.
    pub fn with_address(mut self, address: impl Into<String>, port: i32) -> Self {
        self.address = Some(address.into());
        self.port = Some(port);
        self
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: P) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the service type.
    pub fn with_type(mut self, service_type: ServiceType) -> Self {
        self.service_type = service_type;
        self
    }

    /// Builds the instance's URI from its [`uri_spec`](Self::uri_spec) (empty without one).
    pub fn uri(&self) -> String {
        self.uri_spec
            .as_ref()
            .map(|spec| spec.build(Some(self), &HashMap::new()))
            .unwrap_or_default()
    }

    /// Checks that the name and id can be node names (Curator only requires them non-null;
    /// the server would refuse the rest later with a less helpful error).
    pub(crate) fn check_names(&self) -> Result<()> {
        for (what, value) in [("name", &self.name), ("id", &self.id)] {
            if value.is_empty() || value == "." || value == ".." || value.contains('/') {
                return Err(Error::InvalidArgument(format!(
                    "service instance {what} {value:?} cannot be a node name"
                )));
            }
        }
        Ok(())
    }
}

impl<P: Serialize> ServiceInstance<P> {
    /// The instance's JSON, as Curator's `JsonInstanceSerializer` writes it: fields in
    /// Curator's order, absent values as `null`. With `compatible` the `enabled` field is left
    /// out, as Curator's default serializer (compatible mode) does; a reader then takes the
    /// instance as enabled.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the payload cannot be serialized to JSON.
    pub fn to_json(&self, compatible: bool) -> Result<Vec<u8>> {
        let written = if compatible {
            serde_json::to_vec(&Compatible {
                name: &self.name,
                id: &self.id,
                address: &self.address,
                port: self.port,
                ssl_port: self.ssl_port,
                payload: &self.payload,
                registration_time_utc: self.registration_time_utc,
                service_type: self.service_type,
                uri_spec: &self.uri_spec,
            })
        } else {
            serde_json::to_vec(self)
        };
        written.map_err(|e| Error::InvalidArgument(format!("service instance payload: {e}")))
    }
}

impl<P: DeserializeOwned> ServiceInstance<P> {
    /// Reads an instance from its JSON (as Curator reads it: unknown fields are ignored,
    /// missing ones take Curator's defaults, a missing `enabled` is `true`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for data that is not such JSON, or whose payload does not
    /// fit `P`.
    pub fn from_json(data: &[u8]) -> Result<ServiceInstance<P>> {
        serde_json::from_slice(data)
            .map_err(|e| Error::InvalidArgument(format!("not a service instance: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct JavaMap {
        #[serde(rename = "@class")]
        class: String,
        value: String,
    }

    fn sample() -> ServiceInstance<JavaMap> {
        ServiceInstance {
            name: "svc".into(),
            id: "id1".into(),
            address: Some("10.0.0.1".into()),
            port: Some(80),
            ssl_port: None,
            payload: Some(JavaMap {
                class: "java.util.HashMap".into(),
                value: "x".into(),
            }),
            registration_time_utc: 123,
            service_type: ServiceType::Dynamic,
            uri_spec: Some(UriSpec::parse("{scheme}://{address}:{port}").unwrap()),
            enabled: true,
        }
    }

    // Written by Curator 5.4's JsonInstanceSerializer(Map.class, false) for the same values.
    const CURATOR: &str = r#"{"name":"svc","id":"id1","address":"10.0.0.1","port":80,"sslPort":null,"payload":{"@class":"java.util.HashMap","value":"x"},"registrationTimeUTC":123,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]},"enabled":true}"#;

    #[test]
    fn json_is_curators_byte_for_byte() {
        assert_eq!(
            String::from_utf8(sample().to_json(false).unwrap()).unwrap(),
            CURATOR
        );
        let compatible = CURATOR.replace(r#","enabled":true"#, "");
        assert_eq!(
            String::from_utf8(sample().to_json(true).unwrap()).unwrap(),
            compatible
        );
        assert_eq!(
            ServiceInstance::<JavaMap>::from_json(CURATOR.as_bytes()).unwrap(),
            sample()
        );
    }

    #[test]
    fn missing_fields_take_curators_defaults() {
        let read = ServiceInstance::<String>::from_json(br#"{"name":"a","id":"b","x":1}"#).unwrap();
        assert!(read.enabled);
        assert_eq!(read.service_type, ServiceType::Dynamic);
        assert_eq!(read.payload, None);
        assert_eq!(read.registration_time_utc, 0);
    }

    #[test]
    fn bad_json_and_bad_names_are_typed_errors() {
        assert!(matches!(
            ServiceInstance::<String>::from_json(b"{\"name\":5}"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            ServiceInstance::<String>::from_json(b"not json"),
            Err(Error::InvalidArgument(_))
        ));
        for bad in ["", "a/b", "..", "."] {
            let instance = ServiceInstance::<String>::new("svc").with_id(bad);
            assert!(matches!(
                instance.check_names(),
                Err(Error::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn uri_specs_parse_and_build_as_curators() {
        let spec = UriSpec::parse("{scheme}://{ address }:{port}/x{[}{]}{missing}").unwrap();
        let mut instance = sample();
        assert_eq!(
            spec.build(Some(&instance), &HashMap::new()),
            "http://10.0.0.1:80/x{}"
        );
        instance.ssl_port = Some(443);
        let vars = HashMap::from([("port".to_owned(), "9".to_owned())]);
        assert_eq!(spec.build(Some(&instance), &vars), "https://10.0.0.1:9/x{}");
        for bad in ["{a{b}}", "a}", "{open"] {
            assert!(matches!(
                UriSpec::parse(bad),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert_eq!(
            ServiceInstance::<String>::new("s")
                .with_type(ServiceType::DynamicSequential)
                .uri(),
            ""
        );
    }
}
