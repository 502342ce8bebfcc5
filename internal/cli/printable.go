package cli

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Text that tenants and callers wrote (names, reasons, comments, URLs, a
// server's problem detail) reaches the operator's terminal. Raw, it could
// drive the terminal (OSC 52 writes the clipboard, CSI sequences clear the
// screen or hide text) or reorder what is shown around it (bidi controls).
// Everything the CLI prints passes through printable, or, for JSON and
// YAML, through the escapes those formats have.

// unsafeRune reports whether r must not reach a terminal raw: C0 controls,
// DEL, C1 controls, bidirectional controls, and the line and paragraph
// separators some terminals and editors break lines at.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// printable renders s for a terminal: unsafe runes become \x1b or \u202e
// style escapes, and bytes that are not UTF-8 become \xff. Backslashes stay
// as they are, so ordinary text reads unchanged.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// jsonSafe escapes the unsafe runes encoding/json leaves raw (DEL, C1, bidi
// controls) as \u escapes; it escapes C0 itself, and the newlines left are
// the document's own. In encoder output every rune beyond ASCII is inside a
// string, where \u means the same rune: the document decodes as before.
func jsonSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, unsafeBeyondASCII) {
		return b
	}
	var out bytes.Buffer
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if unsafeBeyondASCII(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[:n])
		}
		b = b[n:]
	}
	return out.Bytes()
}

func unsafeBeyondASCII(r rune) bool { return r >= 0x7f && unsafeRune(r) }

// yamlSafe encodes v as YAML with every string that holds an unsafe rune
// double-quoted, and those runes written as \u escapes, which YAML's double
// quotes read back as the same rune. (yaml.v3 escapes C0 and C1 itself but
// writes bidi controls raw, even in plain scalars.)
func yamlSafe(v any) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(v); err != nil {
		return nil, err
	}
	quoteUnsafe(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return jsonSafe(out.Bytes()), nil
}

func quoteUnsafe(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && strings.ContainsFunc(n.Value, unsafeRune) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteUnsafe(c)
	}
}
