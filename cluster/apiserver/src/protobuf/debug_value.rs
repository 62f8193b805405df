//! A decoded k8s-pb message as a JSON value, read from the message's `Debug` text.
//!
//! k8s-pb's messages derive only `prost::Message`, and prost has no reflection: the one
//! generic view of every field of a decoded message is the `Debug` that prost derives with
//! it, `Name { field: value, .. }` in field order, with `Some(..)`/`None` for optional
//! fields, `[..]` for repeated and bytes fields and `{key: value}` for maps. Its keys are
//! prost's snake_case field names; [`super::rekey`] gives them their JSON names.
//!
//! Kubernetes' wrapper messages become their JSON forms here, by message name: `Time` and
//! `MicroTime` RFC 3339 strings (the zero time is unset), `IntOrString` a number or a
//! string, `Quantity` and `Duration` strings, `RawExtension` and `FieldsV1` the JSON they
//! carry. Bytes stay lists of numbers until the target type asks for a base64 string.

use serde_json::{Map, Number, Value};

/// The JSON value of `text`, the `{:?}` of a prost message.
pub(super) fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value()?;
    parser.skip_spaces();
    if parser.pos != text.len() {
        return Err(parser.unexpected());
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn unexpected(&self) -> String {
        let near: String = self.rest().chars().take(20).collect();
        format!("unexpected text at {}: {near:?}", self.pos)
    }

    /// Consumes `c` (after spaces), or fails.
    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Consumes `c` (after spaces) if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        let next = self.peek() == Some(c);
        if next {
            self.pos += c.len_utf8();
        }
        next
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_spaces();
        match self.peek() {
            Some('"') => self.string().map(Value::String),
            Some('[') => self.list(),
            Some('{') => self.map(),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => match self.ident() {
                "None" => Ok(Value::Null),
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "Some" => {
                    self.expect('(')?;
                    let value = self.value()?;
                    self.expect(')')?;
                    Ok(value)
                }
                name => {
                    let name = name.to_string();
                    // A message without fields prints as its bare name.
                    self.skip_spaces();
                    let fields = if self.peek() == Some('{') {
                        self.fields()?
                    } else {
                        Map::new()
                    };
                    wrapper(&name, fields)
                }
            },
            _ => Err(self.unexpected()),
        }
    }

    fn ident(&mut self) -> &str {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.text[start..self.pos]
    }

    /// `{ name: value, .. }` of a message; raw identifiers (`r#type`) lose their `r#`.
    fn fields(&mut self) -> Result<Map<String, Value>, String> {
        self.expect('{')?;
        let mut fields = Map::new();
        while !self.eat('}') {
            self.skip_spaces();
            let name = self.ident().trim_start_matches("r#").to_string();
            if name.is_empty() {
                return Err(self.unexpected());
            }
            self.expect(':')?;
            fields.insert(name, self.value()?);
            if !self.eat(',') {
                self.expect('}')?;
                break;
            }
        }
        Ok(fields)
    }

    /// `{key: value, ..}` of a map field (string keys, as in every Kubernetes map).
    fn map(&mut self) -> Result<Value, String> {
        self.expect('{')?;
        let mut map = Map::new();
        while !self.eat('}') {
            let Value::String(key) = self.value()? else {
                return Err(format!("a map key is not a string near {}", self.pos));
            };
            self.expect(':')?;
            map.insert(key, self.value()?);
            if !self.eat(',') {
                self.expect('}')?;
                break;
            }
        }
        Ok(Value::Object(map))
    }

    fn list(&mut self) -> Result<Value, String> {
        self.expect('[')?;
        let mut items = Vec::new();
        while !self.eat(']') {
            items.push(self.value()?);
            if !self.eat(',') {
                self.expect(']')?;
                break;
            }
        }
        Ok(Value::Array(items))
    }

    fn number(&mut self) -> Result<Value, String> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+')))
            .unwrap_or(self.rest().len());
        let digits = &self.rest()[..len];
        let number = if let Ok(n) = digits.parse::<i64>() {
            Number::from(n)
        } else if let Ok(n) = digits.parse::<u64>() {
            Number::from(n)
        } else {
            digits
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .ok_or_else(|| self.unexpected())?
        };
        self.pos += len;
        Ok(Value::Number(number))
    }

    /// A string in Rust's `Debug` escaping.
    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += at + 1;
                    return Ok(out);
                }
                '\\' => {
                    let escaped = match chars.next().map(|(_, c)| c) {
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('0') => '\0',
                        Some(c @ ('\\' | '"' | '\'')) => c,
                        Some('u') => {
                            let hex: String = chars
                                .by_ref()
                                .map(|(_, c)| c)
                                .skip(1)
                                .take_while(|c| *c != '}')
                                .collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.unexpected())?
                        }
                        _ => return Err(self.unexpected()),
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        Err("a string does not end".to_string())
    }
}

/// The JSON form of Kubernetes' wrapper messages; any other message is its fields.
fn wrapper(name: &str, fields: Map<String, Value>) -> Result<Value, String> {
    let field = |key: &str| fields.get(key).cloned().unwrap_or(Value::Null);
    Ok(match name {
        "Time" => time(&fields, "%Y-%m-%dT%H:%M:%SZ")?,
        "MicroTime" => time(&fields, "%Y-%m-%dT%H:%M:%S.%6fZ")?,
        // Type 1 is a string; an unset type is Go's zero, the number 0.
        "IntOrString" if field("type").as_i64() == Some(1) => field("str_val"),
        "IntOrString" => Value::from(field("int_val").as_i64().unwrap_or(0)),
        "Quantity" => field("string"),
        "Duration" => field("duration"),
        "RawExtension" | "FieldsV1" => embedded_json(&field("raw"))?,
        _ => Value::Object(fields),
    })
}

fn time(fields: &Map<String, Value>, format: &str) -> Result<Value, String> {
    let number = |key: &str| fields.get(key).and_then(Value::as_i64).unwrap_or(0);
    let (seconds, nanos) = (number("seconds"), number("nanos"));
    if seconds == 0 && nanos == 0 {
        // Go's zero time: unset.
        return Ok(Value::Null);
    }
    let nanos = i32::try_from(nanos).map_err(|_| format!("nanos {nanos} is out of range"))?;
    let timestamp = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| format!("a protobuf time is out of range: {e}"))?;
    Ok(Value::String(timestamp.strftime(format).to_string()))
}

/// The object a `RawExtension` carries: kubectl and controllers embed JSON there.
fn embedded_json(raw: &Value) -> Result<Value, String> {
    let bytes: Vec<u8> = match raw {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) => items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<_>>()
            .ok_or("a bytes field holds something other than bytes")?,
        _ => return Err("a bytes field holds something other than bytes".to_string()),
    };
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|_| {
        "an embedded object (RawExtension) is not JSON; send the object as JSON".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_messages_options_lists_maps_and_escapes() {
        let text = r#"Outer { name: Some("a \"b\"\n\u{7f}"), r#type: None, count: Some(-3), on: Some(false), items: [Inner { x: Some(1) }, Empty], labels: {"k": "v"}, bytes: Some([0, 255]) }"#;
        assert_eq!(
            parse(text).unwrap(),
            json!({"name": "a \"b\"\n\u{7f}", "type": null, "count": -3, "on": false,
                   "items": [{"x": 1}, {}], "labels": {"k": "v"}, "bytes": [0, 255]})
        );
        assert!(parse("Outer { name: Some(\"a) }").is_err());
        assert!(parse("Outer { name: ] }").is_err());
        assert!(parse("Outer {} trailing").is_err());
    }

    #[test]
    fn wrappers_take_their_json_forms() {
        let text = "W { t: Some(Time { seconds: Some(1700000000), nanos: Some(0) }), zero: Some(Time { seconds: Some(0), nanos: Some(0) }), \
                    micro: Some(MicroTime { seconds: Some(1700000000), nanos: Some(5000) }), \
                    port: Some(IntOrString { r#type: Some(0), int_val: Some(80), str_val: Some(\"\") }), \
                    named: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: Some(\"http\") }), \
                    cpu: Some(Quantity { string: Some(\"100m\") }), raw: Some(RawExtension { raw: Some([123, 125]) }) }";
        assert_eq!(
            parse(text).unwrap(),
            json!({"t": "2023-11-14T22:13:20Z", "zero": null, "micro": "2023-11-14T22:13:20.000005Z",
                   "port": 80, "named": "http", "cpu": "100m", "raw": {}})
        );
        let protobuf_inside = "W { raw: Some(RawExtension { raw: Some([107, 56, 115, 0]) }) }";
        assert!(parse(protobuf_inside).unwrap_err().contains("not JSON"));
    }
}
