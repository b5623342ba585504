package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot returns the directory holding go.mod above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// citedFiles are the files whose text may cite the format documents.
func citedFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	exts := map[string]bool{".go": true, ".md": true, ".wit": true, ".conf": true, ".toml": true,
		".service": true, ".sh": true, ".yaml": true, ".txtar": true}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") && name != ".ci" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !exts[filepath.Ext(p)] && rel != filepath.Join(".ci", "run") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	headingRe   = regexp.MustCompile(`(?m)^#{2,3} (\d+(?:\.\d+)?)\.? `)
	decisionRe  = regexp.MustCompile(`(?m)^\| (\d+) \|`)
	specCiteRe  = regexp.MustCompile(`(?:SPEC|format\.md)\s*(?://\s*)?§\s*(\d+(?:\.\d+)?)`)
	decisionsRe = regexp.MustCompile(`(?:DECISIONS|decisions\.md item)\s*(?://\s*)?(\d+)((?:\s*(?:,|and|or)\s*\d+)*)`)
	moreNumsRe  = regexp.MustCompile(`\d+`)
	mdLinkRe    = regexp.MustCompile(`\]\(([^)#\s]+)(?:#[^)]*)?\)`)
)

// TestDocCitationsResolve checks that the repository is self-contained: every
// "SPEC §N" / "format.md §N" citation names a section of docs/format.md,
// every "DECISIONS N" an item of docs/decisions.md, no file points at the
// reference documents outside the repository, and relative links in the
// Markdown files name files that exist.
func TestDocCitationsResolve(t *testing.T) {
	root := repoRoot(t)
	format, err := os.ReadFile(filepath.Join(root, "docs", "format.md"))
	if err != nil {
		t.Fatal(err)
	}
	decisions, err := os.ReadFile(filepath.Join(root, "docs", "decisions.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(string(format), -1) {
		sections[m[1]] = true
	}
	items := map[int]bool{}
	for _, m := range decisionRe.FindAllStringSubmatch(string(decisions), -1) {
		n, _ := strconv.Atoi(m[1])
		items[n] = true
	}
	if len(sections) < 100 || len(items) != 22 {
		t.Fatalf("parsed %d sections of docs/format.md and %d items of docs/decisions.md; want ≥ 100 and 22", len(sections), len(items))
	}
	files := citedFiles(t, root)
	cites := 0
	for rel, text := range files {
		for _, m := range specCiteRe.FindAllStringSubmatch(text, -1) {
			cites++
			if !sections[m[1]] {
				t.Errorf("%s cites %q: docs/format.md has no section %s", rel, m[0], m[1])
			}
		}
		for _, m := range decisionsRe.FindAllStringSubmatch(text, -1) {
			for _, s := range moreNumsRe.FindAllString(m[1]+" "+m[2], -1) {
				cites++
				if n, _ := strconv.Atoi(s); !items[n] {
					t.Errorf("%s cites %q: docs/decisions.md has no item %d", rel, m[0], n)
				}
			}
		}
		// The outside directory is spelled in two parts so this file does
		// not itself name a path outside the repository.
		for _, bad := range []string{"SPEC.md", "DECISIONS.md", ".." + "/" + "shared", "reference format"} {
			if strings.Contains(text, bad) && rel != filepath.Join("integration", "docs_test.go") {
				t.Errorf("%s mentions %q, which is not in the repository (cite docs/format.md or docs/decisions.md)", rel, bad)
			}
		}
		if filepath.Ext(rel) == ".md" {
			for _, m := range mdLinkRe.FindAllStringSubmatch(text, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.Dir(rel), target)); err != nil {
					t.Errorf("%s links to %q, which does not exist", rel, target)
				}
			}
		}
	}
	if cites < 100 {
		t.Errorf("found only %d citations; the patterns no longer match how the code cites the docs", cites)
	}
}
