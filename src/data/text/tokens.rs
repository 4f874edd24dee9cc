//! A corpus read once into word ids: each distinct token is kept once (an id in order of first
//! appearance, and its count), each document as a list of ids. Memory: four bytes per corpus token and
//! each distinct token once, however long the corpus.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Tokens {
    /// Distinct tokens in order of first appearance.
    pub types: Vec<String>,
    /// Each distinct token's count.
    pub counts: Vec<u64>,
    /// Documents with at least one token, as ids into `types`.
    pub docs: Vec<Vec<u32>>,
    index: HashMap<String, u32>,
}

impl Tokens {
    /// Adds one document (skipped when it has no token).
    pub fn push_doc<S: AsRef<str>>(&mut self, tokens: impl IntoIterator<Item = S>) {
        let doc: Vec<u32> = tokens.into_iter().map(|t| self.id(t.as_ref())).collect();
        if !doc.is_empty() {
            self.docs.push(doc);
        }
    }

    fn id(&mut self, token: &str) -> u32 {
        let id = match self.index.get(token) {
            Some(&id) => id,
            None => {
                let id = self.types.len() as u32;
                self.index.insert(token.to_string(), id);
                self.types.push(token.to_string());
                self.counts.push(0);
                id
            }
        };
        self.counts[id as usize] += 1;
        id
    }

    /// Every token's occurrences, in corpus order (tests).
    #[cfg(test)]
    pub fn words(&self) -> Vec<Vec<&str>> {
        let word = |&id: &u32| self.types[id as usize].as_str();
        self.docs
            .iter()
            .map(|d| d.iter().map(word).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_appearance_and_empty_documents_are_skipped() {
        let mut t = Tokens::default();
        t.push_doc(["b", "a", "b"]);
        t.push_doc(Vec::<String>::new());
        t.push_doc(["c", "a"]);
        assert_eq!(t.types, ["b", "a", "c"]);
        assert_eq!(t.counts, [2, 2, 1]);
        assert_eq!(t.docs, vec![vec![0, 1, 0], vec![2, 1]]);
        assert_eq!(t.words(), vec![vec!["b", "a", "b"], vec!["c", "a"]]);
    }
}
