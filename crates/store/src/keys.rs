/// The smallest key greater than every key that starts with `prefix` (etcd's range end for a
/// prefix). UTF-8 orders like code points, so bumping the last character is enough.
pub fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // Skip the surrogate gap; char::MAX has no successor, so drop it and carry.
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    // Empty prefix (or all char::MAX): the range is unbounded; etcd spells that "\0".
    "\0".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_last_character() {
        assert_eq!(prefix_end("/a/b/"), "/a/b0");
        assert_eq!(prefix_end("/a/b"), "/a/c");
        assert_eq!(prefix_end("é"), "ê");
        assert_eq!(prefix_end(""), "\0");
    }

    #[test]
    fn prefix_isolation() {
        // "/a/b" as a directory must not cover "/a/bc": callers add the trailing slash.
        let end = prefix_end("/a/b/");
        assert!("/a/bc" > end.as_str() || "/a/bc" < "/a/b/");
        assert!("/a/b/x" < end.as_str());
    }
}
