//! Email addresses, phone numbers, names and passwords as checked values.

/// A syntactically plausible email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address");
        };
        let valid = email.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@')
            && email.chars().all(|c| c.is_ascii_graphic());
        if valid {
            Ok(Self(email))
        } else {
            Err("must be an email address")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A phone number in E.164 form. Ten-digit Indian mobile numbers get the +91 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err("must be a phone number such as +919876543210");
        }
        let e164 =
            if !compact.starts_with('+') && digits.len() == 10 && digits.starts_with(['6', '7', '8', '9']) {
                format!("+91{digits}")
            } else if compact.starts_with('+') && (8..=15).contains(&digits.len()) && !digits.starts_with('0')
            {
                compact
            } else {
                return Err("must be a phone number such as +919876543210");
            };
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A display name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err("must be 1 to 100 characters without control characters");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password: 8–128 characters (Argon2 input is bounded so hashing cost is bounded).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let length = raw.chars().count();
        if length < 8 {
            return Err("must be at least 8 characters");
        }
        if length > 128 {
            return Err("must be at most 128 characters");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_junk_is_refused() {
        assert_eq!(
            Email::parse("  Asha@Example.IN ").unwrap().as_str(),
            "asha@example.in"
        );
        for bad in [
            "",
            "asha",
            "@example.in",
            "asha@",
            "asha@example",
            "a b@example.in",
            "a@.in",
            "a@b..in",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn indian_mobiles_gain_the_country_code_and_junk_is_refused() {
        assert_eq!(Phone::parse("98765 43210").unwrap().as_str(), "+919876543210");
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        for bad in [
            "",
            "12345",
            "abcdefghij",
            "+0123456789",
            "0987654321",
            "+1234567890123456",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_bounded_on_both_sides() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }
}
