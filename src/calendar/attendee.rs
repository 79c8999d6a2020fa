//! Who a booking is for: a name and an email and/or a phone number, validated once for every calendar.

use serde::{Deserialize, Serialize};

use super::CalendarError;

const MAX_NAME: usize = 100;
const MAX_EMAIL: usize = 254;

/// A validated attendee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Full name as given.
    pub name: String,
    /// Lower-cased email.
    pub email: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
}

impl Attendee {
    /// Validates a name plus an email and/or phone (at least one of them).
    pub fn new(name: &str, email: Option<&str>, phone: Option<&str>) -> Result<Self, CalendarError> {
        let invalid = |field, message: &str| CalendarError::InvalidAttendee { field, message: message.to_string() };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(invalid("attendee_name", "I need the attendee's name"));
        }
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let phone = phone.map(str::trim).filter(|p| !p.is_empty());
        let email = match email {
            Some(email) if is_email(email) => Some(email.to_lowercase()),
            Some(_) => return Err(invalid("attendee_email", "That email address does not look right")),
            None => None,
        };
        let phone = match phone {
            Some(phone) => Some(
                crate::phone::normalize(phone)
                    .map_err(|_| invalid("attendee_phone", "That phone number does not look right"))?
                    .to_string(),
            ),
            None => None,
        };
        if email.is_none() && phone.is_none() {
            return Err(invalid("attendee_email", "I need an email address or a phone number for the booking"));
        }
        Ok(Self { name: name.to_string(), email, phone })
    }
}

/// A pragmatic address check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(text: &str) -> bool {
    if text.len() > MAX_EMAIL || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_contact_details() {
        let a = Attendee::new(" Ada Lovelace ", Some("Ada@Example.COM"), None).expect("valid");
        assert_eq!((a.name.as_str(), a.email.as_deref()), ("Ada Lovelace", Some("ada@example.com")));
        let b = Attendee::new("Bob", None, Some("+1 (555) 010-0199")).expect("phone only");
        assert_eq!(b.phone.as_deref(), Some("+15550100199"));
        for (name, email, phone, field) in [
            ("", Some("a@b.co"), None, "attendee_name"),
            ("Ann", Some("not-an-email"), None, "attendee_email"),
            ("Ann", Some("a@b"), None, "attendee_email"),
            ("Ann", None, Some("12"), "attendee_phone"),
            ("Ann", None, None, "attendee_email"),
        ] {
            match Attendee::new(name, email, phone) {
                Err(CalendarError::InvalidAttendee { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{name:?} {email:?} {phone:?}: {other:?}"),
            }
        }
    }
}
