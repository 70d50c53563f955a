//! `wire_enum!`: open newtypes for wire codes.
//!
//! A wire code is a number whose known values have names. Unknown values must
//! survive a decode/encode round trip unchanged (a newer peer may send them), so the
//! type is a newtype over the integer, not a Rust enum; `Debug` prints the name when
//! there is one and the hex value otherwise.

/// Declares `pub struct $name(pub $int)` with named constants, `name()` and a `Debug`
/// that prints `NAME` or `$name(0x…)`.
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The constant's name, or `None` for a value this version does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// True for a value this version knows.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#x})", stringify!($name), self.0),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self, f)
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::wire_enum! {
        /// A test code.
        pub struct Colour(u8) {
            /// Red.
            RED = 1,
            /// Blue.
            BLUE = 2,
        }
    }

    #[test]
    fn names_and_unknown_values() {
        assert_eq!(format!("{:?}", Colour::RED), "RED");
        assert_eq!(format!("{:?}", Colour(0x7f)), "Colour(0x7f)");
        assert!(Colour::BLUE.is_known());
        assert!(!Colour(9).is_known());
        assert_eq!(u8::from(Colour(9)), 9);
    }
}
