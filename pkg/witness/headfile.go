// Package witness holds the anti-rollback head file (SPEC §10, DECISIONS 11)
// and the witness protocol types (SPEC §11, DECISIONS 12).
package witness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HeadFileVersion is the only head-file format version.
const HeadFileVersion = 1

// HeadFileSuffix is appended to the store's file name to name its head file.
const HeadFileSuffix = ".heads.json"

// HeadRecord is the newest signed checkpoint of one stream.
type HeadRecord struct {
	StreamID          string `json:"stream_id"`
	SegmentID         uint64 `json:"segment_id"`
	SeqEnd            uint64 `json:"seq_end"`
	CheckpointHashHex string `json:"checkpoint_hash_hex"`
	UpdatedAt         string `json:"updated_at_rfc3339"`
}

// HeadFile is the JSON document of SPEC §10.2.
type HeadFile struct {
	Version int          `json:"version"`
	Records []HeadRecord `json:"records"`
}

// PathForStore returns the head-file path of a store path (SPEC §10.1):
// "<dir>/<name>.heads.json", or "<dir>/tpm.db.heads.json" when the path has
// no file-name component. For a directory store (pebble), the head file sits
// beside the directory: "/var/lib/x/log" → "/var/lib/x/log.heads.json".
func PathForStore(storePath string) string {
	clean := strings.TrimRight(storePath, "/")
	if clean == "" || strings.HasSuffix(storePath, "/") && clean == "" {
		return "tpm.db" + HeadFileSuffix
	}
	dir, name := filepath.Split(clean)
	if name == "" || name == "." || name == ".." {
		return filepath.Join(clean, "tpm.db"+HeadFileSuffix)
	}
	return filepath.Join(dir, name+HeadFileSuffix)
}

// Lookup returns the record of a stream.
func (h *HeadFile) Lookup(stream string) (HeadRecord, bool) {
	for _, r := range h.Records {
		if r.StreamID == stream {
			return r, true
		}
	}
	return HeadRecord{}, false
}

// Advance upserts rec for its stream, but only forwards (DECISIONS 11): a
// record with a lower segment id than the current one is ignored and
// Advance reports false. Insertion order of streams is kept.
func (h *HeadFile) Advance(rec HeadRecord) bool {
	for i, r := range h.Records {
		if r.StreamID == rec.StreamID {
			if rec.SegmentID < r.SegmentID {
				return false
			}
			h.Records[i] = rec
			return true
		}
	}
	h.Records = append(h.Records, rec)
	return true
}

// ParseHeadFile decodes a head file (SPEC §10.2). A missing records member is
// an empty list; a version other than 1 is an error.
func ParseHeadFile(data []byte) (*HeadFile, error) {
	var raw struct {
		Version *int         `json:"version"`
		Records []HeadRecord `json:"records"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse head file: %w", err)
	}
	v := 0
	if raw.Version != nil {
		v = *raw.Version
	}
	if v != HeadFileVersion {
		return nil, fmt.Errorf("unsupported head file version: %d (expected 1)", v)
	}
	if raw.Records == nil {
		raw.Records = []HeadRecord{}
	}
	return &HeadFile{Version: v, Records: raw.Records}, nil
}

// Marshal renders the head file pretty-printed with 2-space indentation and
// no trailing newline (SPEC §10.2).
func (h *HeadFile) Marshal() ([]byte, error) {
	out := HeadFile{Version: HeadFileVersion, Records: h.Records}
	if out.Records == nil {
		out.Records = []HeadRecord{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\n"), nil
}

// LoadHeadFile reads a head file; a missing file is an empty head file.
func LoadHeadFile(path string) (*HeadFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &HeadFile{Version: HeadFileVersion, Records: []HeadRecord{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read head file %q: %w", path, err)
	}
	h, err := ParseHeadFile(data)
	if err != nil {
		return nil, fmt.Errorf("head file %q: %w", path, err)
	}
	return h, nil
}
