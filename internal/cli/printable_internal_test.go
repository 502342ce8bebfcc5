package cli

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain text is unchanged", "Acme Corp — café 日本 \uFFFD \\x1b", "Acme Corp — café 日本 \uFFFD \\x1b"},
		{"OSC 52 and BEL", "a\x1b]52;c;aGk=\x07b", `a\x1b]52;c;aGk=\x07b`},
		{"CSI", "\x1b[2J\x1b[8m", `\x1b[2J\x1b[8m`},
		{"newline, tab, CR, NUL, DEL", "a\nb\tc\rd\x00e\x7f", `a\x0ab\x09c\x0dd\x00e\x7f`},
		{"C1", "\u0085\u009b\u009d\u0080", `\u0085\u009b\u009d\u0080`},
		{"bidi", "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
		{"line and paragraph separators", "a\u2028b\u2029", `a\u2028b\u2029`},
		{"invalid UTF-8", "a\xffb\xe2\x80", `a\xffb\xe2\x80`},
		{"an encoded C1 CSI byte", "\xc2\x9b", `\u009b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := printable(tc.in); got != tc.want {
				t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// jsonSafe and yamlSafe escape what the encoders leave raw and change no
// value: the output decodes to the input.
func TestJSONAndYAMLSafe(t *testing.T) {
	in := map[string]any{"r": "x\u202ey\u009b\x7f\u2066\u061cz", "k\u202e": []any{"\u200f", "plain"}, "n": 3}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	js := jsonSafe(b)
	y, err := yamlSafe(in)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"json": js, "yaml": y} {
		for _, r := range string(out) {
			if r != '\n' && unsafeRune(r) {
				t.Errorf("%s has %U raw:\n%s", name, r, out)
			}
		}
		var back map[string]any
		if name == "json" {
			err = json.Unmarshal(out, &back)
		} else {
			err = yaml.Unmarshal(out, &back)
		}
		if err != nil {
			t.Fatalf("%s does not decode: %v\n%s", name, err, out)
		}
		if back["r"] != in["r"] || back["k\u202e"].([]any)[0] != "\u200f" {
			t.Errorf("%s decodes to %q, want %q", name, back, in)
		}
	}
}
