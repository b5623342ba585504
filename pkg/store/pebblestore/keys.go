package pebblestore

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Integers are 8-byte big-endian so byte order is numeric order.
// A stream name inside a key is order-preserving escaped: every 0x00 byte is
// written 0x00 0xFF and the name ends with 0x00 0x01, so no name's keys are
// a prefix of another name's and names iterate in byte order.
//
//	v                          schema version (7; 1 = before the entry indexes,
//	                           2 = before the entry counts, 3 = before the urgent index,
//	                           4 = urgent index without the severity in its keys,
//	                           5 = one index record per entry, counts without high marks,
//	                           6 = the indexes and counts under xt/ xy/ xp/ xs/ cn/)
//	vx                         present in a benchmark store written without the
//	                           entry indexes and counts (WithoutQueryIndexesForBenchmark)
//	c/seg  c/wit  c/str        last allocated segment id, witness id, stream order (be64)
//	e/<seqno>                  stream name of the entry (primary uniqueness key)
//	s/<stream><seqno>          entry row (so Range and Head are one ordered scan)
//	g/<id>                     segment row
//	gs/<stream><id>            seq_end of the stream's segment (be64)
//	ge/<id><leaf><seqno>       membership record (empty)
//	gf/<seqno><id>             reverse membership (empty, or leaf index ‖ tree size
//	                           (be64 each) when the segment's tree is stored)
//	gt/<id><level><chunk>      stored Merkle tree chunk (level: 1 byte; store.TreeChunk)
//	gr/<stream>                segment id reserved for the stream's next segment (be64;
//	                           store.SegmentReserver; counted in c/seg)
//	ws/<stream><id>            witness row
//	t/<order>                  stream row, order = creation order
//	tn/<name>                  order of the stream (be64)
//	m/<key>                    meta record written by CommitBatch
//	i/t i/y i/p i/s            secondary indexes of the entries (index.go)
//	mc/<stream>                the stream's entry count and high mark (index.go), in
//	                           the entries' batch
var (
	keyVersion        = []byte("v")
	keySegCounter     = []byte("c/seg")
	keyWitnessCounter = []byte("c/wit")
	keyStreamCounter  = []byte("c/str")
	keyNoQueryIndexes = []byte("vx") // written by WithoutQueryIndexesForBenchmark

	prefixEntry        = "e/"
	prefixStreamEntry  = "s/"
	prefixSegment      = "g/"
	prefixStreamSeg    = "gs/"
	prefixSegEntry     = "ge/"
	prefixSeqnoSeg     = "gf/"
	prefixSegTree      = "gt/"
	prefixSegReserved  = "gr/"
	prefixWitness      = "ws/"
	prefixStream       = "t/"
	prefixStreamByName = "tn/"
	prefixMeta         = "m/"
)

const schemaVersion = 7

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func key(prefix string, parts ...[]byte) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// escStream is the escaped, terminated stream name.
func escStream(name string) []byte { return appendEscStream(make([]byte, 0, len(name)+2), name) }

// appendEscStream appends the escaped, terminated stream name to dst.
func appendEscStream(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		dst = append(dst, name[i])
		if name[i] == 0 {
			dst = append(dst, 0xFF)
		}
	}
	return append(dst, 0, 1)
}

// unescStream reads an escaped stream name from the start of b and returns
// it and the rest of b.
func unescStream(b []byte) (string, []byte, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case 0xFF:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], nil
		default:
			return "", nil, fmt.Errorf("bad stream escape 0x00 0x%02x in key", b[i+1])
		}
	}
	return "", nil, fmt.Errorf("unterminated stream name in key")
}

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every byte 0xFF: no upper bound
}

func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("want an 8-byte big-endian integer, got %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
