//! `4lw WORD`: four-letter words, parsed to JSON where the answer has structure.

use serde_json::{Map, Value, json};
use zkwarden::client::connect_string::ConnectString;
use zkwarden::testing::four_letter_word;

use crate::args::{Global, Word};
use crate::exit::Failure;
use crate::output::Output;

impl Word {
    /// The word as sent.
    fn as_str(self) -> &'static str {
        match self {
            Word::Mntr => "mntr",
            Word::Srvr => "srvr",
            Word::Cons => "cons",
            Word::Ruok => "ruok",
            Word::Stat => "stat",
            Word::Conf => "conf",
        }
    }
}

/// The server to ask: `--server`, or the first host of the connect string or config.
fn server(global: &Global, explicit: Option<&str>) -> Result<String, Failure> {
    if let Some(server) = explicit {
        return Ok(server.to_owned());
    }
    let config = crate::connect::config(global)?;
    let parsed = ConnectString::parse(&config.connect)
        .map_err(|e| Failure::Usage(format!("bad connect string: {e}")))?;
    parsed
        .hosts
        .first()
        .map(ToString::to_string)
        .ok_or_else(|| Failure::Usage("the connect string names no server".into()))
}

/// A number when the text is one, else the text.
fn scalar(text: &str) -> Value {
    let text = text.trim();
    text.parse::<i64>()
        .map(Value::from)
        .or_else(|_| text.parse::<f64>().map(Value::from))
        .unwrap_or_else(|_| Value::from(text))
}

/// `mntr` (`key<TAB>value` lines) and `conf` (`key=value` lines): one object.
fn parse_key_values(answer: &str, separator: char) -> Value {
    let map: Map<String, Value> = answer
        .lines()
        .filter_map(|line| line.split_once(separator))
        .map(|(key, value)| (key.trim().to_owned(), scalar(value)))
        .collect();
    Value::Object(map)
}

/// One `cons` line, ` /127.0.0.1:5000[1](queued=0,recved=5,sid=0x...,...)`: the address and
/// the `key=value` fields in parentheses.
fn parse_connection(line: &str) -> Option<Value> {
    let line = line.trim();
    let open = line.find('(')?;
    let address = line[..open]
        .trim_start_matches('/')
        .split('[')
        .next()
        .unwrap_or("")
        .to_owned();
    let inner = line[open + 1..].trim_end_matches(')');
    let mut fields: Map<String, Value> = inner
        .split(',')
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| {
            // Ids are hex; keep them as text rather than turning them into numbers.
            let value = if value.starts_with("0x") {
                Value::from(value)
            } else {
                scalar(value)
            };
            (key.to_owned(), value)
        })
        .collect();
    fields.insert("address".into(), Value::from(address));
    Some(Value::Object(fields))
}

/// `srvr` / `stat`: `Key: value` lines; `stat` also lists clients (`Clients:` then one
/// connection per line), which become `clients`.
fn parse_srvr(answer: &str) -> Value {
    let mut map = Map::new();
    let mut clients = Vec::new();
    let mut in_clients = false;
    for line in answer.lines() {
        if line.trim() == "Clients:" {
            in_clients = true;
            continue;
        }
        if in_clients {
            match parse_connection(line) {
                Some(client) => {
                    clients.push(client);
                    continue;
                }
                None => in_clients = false,
            }
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim().to_lowercase().replace([' ', '/'], "_");
            map.insert(key, scalar(value));
        }
    }
    if !clients.is_empty() {
        map.insert("clients".into(), Value::from(clients));
    }
    Value::Object(map)
}

/// The answer as JSON.
fn parse(word: Word, answer: &str) -> Value {
    match word {
        Word::Mntr => parse_key_values(answer, '\t'),
        Word::Conf => parse_key_values(answer, '='),
        Word::Srvr | Word::Stat => parse_srvr(answer),
        Word::Cons => Value::from(
            answer
                .lines()
                .filter_map(parse_connection)
                .collect::<Vec<_>>(),
        ),
        Word::Ruok => json!({ "ok": answer.trim() == "imok" }),
    }
}

/// `4lw WORD [--server HOST:PORT]`.
///
/// # Errors
/// [`Failure::Usage`] without a server; [`Failure::Connection`] when it does not answer (or
/// has the word disabled: it then closes without a word).
pub async fn run(
    global: &Global,
    out: Output,
    word: Word,
    explicit: Option<&str>,
) -> Result<(), Failure> {
    let server = server(global, explicit)?;
    let addr = tokio::net::lookup_host(server.as_str())
        .await
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| Failure::Usage(format!("cannot resolve {server:?}")))?;
    let answer = tokio::task::spawn_blocking(move || four_letter_word(addr, word.as_str()))
        .await
        .map_err(|e| Failure::Connection(format!("asking {server}: {e}")))?
        .map_err(|e| Failure::Connection(e.to_string()))?;
    if answer.is_empty() {
        return Err(Failure::Connection(format!(
            "{server} closed without answering {:?} (is it in 4lw.commands.whitelist?)",
            word.as_str()
        )));
    }
    out.emit(answer.trim_end(), &parse(word, &answer));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_answers_parse() {
        let mntr = parse(
            Word::Mntr,
            "zk_version\t3.8.0-x\nzk_avg_latency\t0.5\nzk_znode_count\t5\n",
        );
        assert_eq!(mntr["zk_znode_count"], 5);
        assert_eq!(mntr["zk_avg_latency"], 0.5);
        assert_eq!(mntr["zk_version"], "3.8.0-x");
        let stat = parse(
            Word::Stat,
            "Zookeeper version: 3.8.0\nClients:\n /127.0.0.1:5000[1](queued=0,recved=3,sid=0x10)\n\nLatency min/avg/max: 0/0.1/2\nMode: standalone\nNode count: 5\n",
        );
        assert_eq!(stat["mode"], "standalone");
        assert_eq!(stat["node_count"], 5);
        assert_eq!(stat["clients"][0]["sid"], "0x10");
        assert_eq!(stat["clients"][0]["address"], "127.0.0.1:5000");
    }
}
