//! bcftools filter expressions as text -> tokens -> a tree ([`parse`]), by precedence:
//! `|| |`, then `&& &`, then one comparison, then `+ -`, then `* /`, then `! -` and `( )`.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Number(String),
    Text(String),
    Name(String),
    Op(&'static str),
    Open,
    Close,
}

const OPERATORS: [&str; 17] = [
    "&&", "||", "==", "!=", "<=", ">=", "!~", "&", "|", "=", "<", ">", "~", "!", "+", "-", "*",
];

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest: String = chars[i..].iter().take(2).collect();
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| format!("unterminated string at character {}", i + 1))?;
            out.push(Token::Text(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            number
                .parse::<f64>()
                .map_err(|_| format!("{number:?} is not a number"))?;
            out.push(Token::Number(number));
        } else if c == '.' {
            // A bare `.`: missing, as `"."`.
            out.push(Token::Text(".".into()));
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let word = |i: &mut usize| {
                let start = *i;
                while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
                    *i += 1;
                }
                chars[start..*i].iter().collect::<String>()
            };
            let mut name = word(&mut i);
            // INFO/TAG, FORMAT/TAG: one name (a `/` elsewhere divides).
            let prefix = ["INFO", "FORMAT", "FMT"].contains(&name.to_ascii_uppercase().as_str());
            if prefix && chars.get(i) == Some(&'/') {
                i += 1;
                name = format!("{name}/{}", word(&mut i));
            }
            out.push(Token::Name(name));
        } else if let Some(op) = OPERATORS
            .iter()
            .chain(&["/"])
            .find(|op| rest.starts_with(**op))
        {
            out.push(Token::Op(op));
            i += op.len();
        } else {
            return Err(format!("unexpected {c:?} at character {}", i + 1));
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Number(String),
    Text(String),
    Field(String),
    Not(Box<Node>),
    Negate(Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_op(&self, ops: &[&str]) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) if ops.contains(op) => Some(op),
            _ => None,
        }
    }

    fn binary(
        &mut self,
        ops: &[&str],
        next: fn(&mut Self) -> Result<Node, String>,
    ) -> Result<Node, String> {
        let mut node = next(self)?;
        while let Some(op) = self.peek_op(ops) {
            self.at += 1;
            node = Node::Binary(op, Box::new(node), Box::new(next(self)?));
        }
        Ok(node)
    }

    fn or(&mut self) -> Result<Node, String> {
        self.binary(&["||", "|"], Self::and)
    }

    fn and(&mut self) -> Result<Node, String> {
        self.binary(&["&&", "&"], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Node, String> {
        let node = self.sum()?;
        match self.peek_op(&["==", "=", "!=", "<", "<=", ">", ">=", "~", "!~"]) {
            Some(op) => {
                self.at += 1;
                Ok(Node::Binary(op, Box::new(node), Box::new(self.sum()?)))
            }
            None => Ok(node),
        }
    }

    fn sum(&mut self) -> Result<Node, String> {
        self.binary(&["+", "-"], Self::product)
    }

    fn product(&mut self) -> Result<Node, String> {
        self.binary(&["*", "/"], Self::unary)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if let Some(op) = self.peek_op(&["!", "-"]) {
            self.at += 1;
            let inner = Box::new(self.unary()?);
            return Ok(if op == "!" {
                Node::Not(inner)
            } else {
                Node::Negate(inner)
            });
        }
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Number(n)) => Ok(Node::Number(n)),
            Some(Token::Text(t)) => Ok(Node::Text(t)),
            Some(Token::Name(name)) => match self.tokens.get(self.at) {
                Some(Token::Open) => Err(format!("function {name}(...) is not supported")),
                _ => Ok(Node::Field(name)),
            },
            Some(Token::Open) => {
                let node = self.or()?;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(node)
                    }
                    _ => Err("a ( is not closed".into()),
                }
            }
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("the expression ends too early".into()),
        }
    }
}

/// Parses `text` into its tree.
pub(super) fn parse(text: &str) -> Result<Node, String> {
    let tokens = tokens(text)?;
    if tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut parser = Parser { tokens, at: 0 };
    let node = parser.or()?;
    match parser.tokens.get(parser.at) {
        Some(extra) => Err(format!("unexpected {extra:?} after the expression")),
        None => Ok(node),
    }
}
