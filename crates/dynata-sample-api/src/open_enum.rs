//! `open_enum!`: the enum a server-sent value that may grow becomes.
//!
//! The spec lists such values under `x-extensible-enum`; `cargo xtask codegen`
//! emits one `open_enum!` per schema into the generated `types` module. The
//! implementation lives here, once, where it is tested.

/// Defines an enum with one variant per known wire value and
/// `Other(String)` for any value this version does not know, with serde,
/// `Display`, `FromStr` and (behind the `schemars` feature) `JsonSchema`.
macro_rules! open_enum {
    (
        $(#[$attr:meta])*
        $name:ident { $($variant:ident => $wire:literal),* $(,)? }
    ) => {
        $(#[$attr])*
        ///
        /// The server may add values: one this version does not list decodes
        /// as `Other`, holding the text as sent. Known values are recognised
        /// without regard to ASCII case and sent in the spelling shown.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )*
            /// A value this version does not know, as the server sent it.
            Other(::std::string::String),
        }

        impl $name {
            /// The values this version knows, in the spec's spelling.
            pub const KNOWN: &'static [&'static str] = &[$($wire),*];

            /// The value as it goes on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(value) => value,
                }
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                $(
                    if value.eq_ignore_ascii_case($wire) {
                        return Self::$variant;
                    }
                )*
                Self::Other(value.to_owned())
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(value: ::std::string::String) -> Self {
                match Self::from(value.as_str()) {
                    Self::Other(_) => Self::Other(value),
                    known => known,
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;

            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                <::std::string::String as ::serde::Deserialize>::deserialize(deserializer)
                    .map(Self::from)
            }
        }

        #[cfg(feature = "schemars")]
        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::string::String {
                stringify!($name).to_owned()
            }

            fn json_schema(
                _: &mut ::schemars::r#gen::SchemaGenerator,
            ) -> ::schemars::schema::Schema {
                // The spec's own shape: a string, with the known values
                // under `x-extensible-enum`, so the drift test compares them.
                let mut schema = ::schemars::schema::SchemaObject {
                    instance_type: Some(::schemars::schema::InstanceType::String.into()),
                    ..Default::default()
                };
                schema.extensions.insert(
                    "x-extensible-enum".to_owned(),
                    ::serde_json::json!(Self::KNOWN),
                );
                schema.into()
            }
        }
    };
}

#[cfg(test)]
#[allow(unreachable_pub)] // the macro makes the test enum `pub`, as in `types`
mod tests {
    open_enum! {
        #[doc = "A test enum."]
        Colour { Red => "RED", DarkBlue => "DARK_BLUE", Lower => "lower" }
    }

    #[test]
    fn known_values_decode_to_their_variant_in_any_case() {
        let decoded: Vec<Colour> =
            serde_json::from_str(r#"["RED","dark_blue","LOWER","lower"]"#).expect("decodes");
        assert_eq!(
            decoded,
            [Colour::Red, Colour::DarkBlue, Colour::Lower, Colour::Lower]
        );
    }

    #[test]
    fn an_unknown_value_decodes_and_stays_visible() {
        let decoded: Colour = serde_json::from_str(r#""ULTRAVIOLET""#).expect("decodes");
        assert_eq!(decoded, Colour::Other("ULTRAVIOLET".to_owned()));
        assert_eq!(decoded.as_str(), "ULTRAVIOLET");
        assert_eq!(decoded.to_string(), "ULTRAVIOLET");
        let empty: Colour = serde_json::from_str(r#""""#).expect("decodes");
        assert_eq!(empty, Colour::Other(String::new()));
    }

    #[test]
    fn values_are_sent_in_the_spec_spelling_and_round_trip() {
        let sent = serde_json::to_string(&[Colour::DarkBlue, "lower".parse().expect("infallible")])
            .expect("encodes");
        assert_eq!(sent, r#"["DARK_BLUE","lower"]"#);
        let other = Colour::from("Teal".to_owned());
        let back: Colour = serde_json::from_str(&serde_json::to_string(&other).expect("encodes"))
            .expect("decodes");
        assert_eq!(back, other);
        assert_eq!(Colour::KNOWN, ["RED", "DARK_BLUE", "lower"]);
    }

    #[test]
    fn a_value_of_another_json_type_is_refused() {
        assert!(serde_json::from_str::<Colour>("12").is_err());
        assert!(serde_json::from_str::<Colour>("null").is_err());
    }
}
