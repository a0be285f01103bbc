//! A set of resource-group indices, as carried in heartbeats (bitmap, bit i
//! of byte i/8 = group i, trailing zero bytes trimmed).

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupSet(Vec<u8>);

impl GroupSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// All of `0..n`.
    pub fn all(n: usize) -> Self {
        let mut s = Self::new();
        for i in 0..n {
            s.insert(i);
        }
        s
    }

    pub fn from_indices(it: impl IntoIterator<Item = usize>) -> Self {
        let mut s = Self::new();
        for i in it {
            s.insert(i);
        }
        s
    }

    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    pub fn insert(&mut self, i: usize) {
        if self.0.len() <= i / 8 {
            self.0.resize(i / 8 + 1, 0);
        }
        self.0[i / 8] |= 1 << (i % 8);
    }

    pub fn remove(&mut self, i: usize) {
        if let Some(b) = self.0.get_mut(i / 8) {
            *b &= !(1 << (i % 8));
        }
        self.trim();
    }

    pub fn set(&mut self, i: usize, on: bool) {
        if on {
            self.insert(i)
        } else {
            self.remove(i)
        }
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.0.len() * 8).filter(|i| self.contains(*i))
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn union(&self, o: &GroupSet) -> GroupSet {
        GroupSet::from_indices(self.iter().chain(o.iter()))
    }

    /// Wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// From wire bytes (trailing zeros tolerated).
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut s = GroupSet(b.to_vec());
        s.trim();
        s
    }
}

impl fmt::Debug for GroupSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut s = GroupSet::new();
        assert!(s.is_empty());
        s.insert(0);
        s.insert(9);
        s.insert(1023);
        assert!(s.contains(9) && s.contains(0) && s.contains(1023) && !s.contains(8));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 9, 1023]);
        assert_eq!(s.len(), 3);
        s.remove(1023);
        assert_eq!(
            s.as_bytes(),
            &[0x01, 0x02],
            "trimmed after removing the top bit"
        );
        assert_eq!(GroupSet::from_bytes(&[1, 2, 0, 0]), s);
        assert_eq!(GroupSet::all(3).iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(
            s.union(&GroupSet::from_indices([2]))
                .iter()
                .collect::<Vec<_>>(),
            vec![0, 2, 9]
        );
        s.set(0, false);
        s.set(9, false);
        assert!(s.is_empty() && s.as_bytes().is_empty());
    }
}
