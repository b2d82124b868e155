// Package yamlerr rewrites yaml.v3's decoding errors in plain words, without the Go type
// names they carry ("cannot unmarshal !!str `x` into float64", "field f not found in type
// task.Config"), so that a user reading them learns what to change in the file.
package yamlerr

import (
	"errors"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	unmarshalRE = regexp.MustCompile("^(line \\d+: )?cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	unknownRE   = regexp.MustCompile(`^(line \d+: )?field (\S+) not found in type .+$`)
)

// Plain returns err with every message of a *yaml.TypeError rewritten in words ("line 6:
// `abc` is not a number", "line 1: unknown key \"bogus\""); other errors are returned
// unchanged (yaml's syntax errors already say what is wrong, in words), except io.EOF, a
// Decoder's word for an empty file.
func Plain(err error) error {
	if errors.Is(err, io.EOF) { // what yaml.v3's Decoder says of an empty file
		return errors.New("the file is empty")
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = plainMessage(m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func plainMessage(m string) string {
	if g := unknownRE.FindStringSubmatch(m); g != nil {
		return g[1] + "unknown key \"" + g[2] + "\""
	}
	g := unmarshalRE.FindStringSubmatch(m)
	if g == nil {
		return m
	}
	got := "`" + g[3] + "`"
	switch g[2] {
	case "!!seq":
		got = "a list"
	case "!!map":
		got = "a map (key: value lines)"
	case "!!null":
		got = "an empty value"
	}
	return g[1] + got + " is not " + goTypeWords(g[4])
}

// goTypeWords says in words what a value of the Go type named t looks like.
func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "struct"), strings.Contains(t, "."):
		return "a map (key: value lines)"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	}
	return "of the expected kind"
}
