//! The fields of a JSON object a request carries (a REST body, an MCP tool's arguments), read
//! the same way whichever front door it came through: each error names its field.

use serde_json::{Map, Value};

pub type Object = Map<String, Value>;

/// A string, or nothing when the field is absent or null.
pub fn optional_str<'a>(object: &'a Object, field: &str) -> Result<Option<&'a str>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{field}: must be a string")),
    }
}

/// A string that must be there (null is not a string).
pub fn required_str<'a>(object: &'a Object, field: &str) -> Result<&'a str, String> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        None => Err(format!("{field}: is required")),
        Some(_) => Err(format!("{field}: must be a string")),
    }
}

/// A whole number of 0 or more (an id). Agents sometimes send numbers as strings, and the web
/// UI's form sends an empty one for none: both are accepted.
pub fn optional_id(object: &Object, field: &str) -> Result<Option<u64>, String> {
    let invalid = || format!("{field}: must be a whole number of 0 or more");
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// A number (seconds, a page size), or a string holding one.
pub fn optional_number(object: &Object, field: &str) -> Result<Option<f64>, String> {
    let invalid = || format!("{field}: must be a number");
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(invalid),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// What a post carries, from REST's body or `post_message`'s arguments.
pub struct PostFields<'a> {
    pub target: &'a str,
    /// Left out by a principal, who posts as itself.
    pub sender: Option<&'a str>,
    pub text: &'a str,
    /// The message this answers.
    pub reply_to: Option<u64>,
}

impl<'a> PostFields<'a> {
    pub fn parse(object: &'a Object) -> Result<PostFields<'a>, String> {
        Ok(PostFields {
            target: required_str(object, "target")?,
            sender: optional_str(object, "sender")?,
            text: required_str(object, "text")?,
            reply_to: optional_id(object, "reply_to")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn required_strings_name_the_field() {
        assert_eq!(required_str(&object(json!({})), "target").unwrap_err(), "target: is required");
        assert_eq!(
            required_str(&object(json!({"target": 1})), "target").unwrap_err(),
            "target: must be a string"
        );
        assert_eq!(
            required_str(&object(json!({"target": null})), "target").unwrap_err(),
            "target: must be a string"
        );
        assert_eq!(required_str(&object(json!({"target": "x"})), "target").unwrap(), "x");
    }

    #[test]
    fn ids_accept_numbers_digit_strings_and_an_empty_string() {
        assert_eq!(optional_id(&object(json!({"since_id": 5})), "since_id").unwrap(), Some(5));
        assert_eq!(optional_id(&object(json!({"since_id": "7"})), "since_id").unwrap(), Some(7));
        assert_eq!(optional_id(&object(json!({"reply_to": " "})), "reply_to").unwrap(), None);
        assert_eq!(optional_id(&object(json!({})), "since_id").unwrap(), None);
        for bad in [json!(-1), json!(1.5), json!("x"), json!([1])] {
            assert!(optional_id(&object(json!({"since_id": bad})), "since_id").is_err());
        }
    }

    #[test]
    fn a_post_needs_its_target_and_text_first() {
        let post = object(json!({"target": "c", "sender": "me", "text": "hi", "reply_to": "3"}));
        let fields = PostFields::parse(&post).unwrap();
        assert_eq!(
            (fields.target, fields.sender, fields.text, fields.reply_to),
            ("c", Some("me"), "hi", Some(3))
        );
        let missing = object(json!({"sender": "me"}));
        assert_eq!(PostFields::parse(&missing).err().unwrap(), "target: is required");
    }
}
