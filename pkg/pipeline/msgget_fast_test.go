package pipeline

import (
	"encoding/json"
	"reflect"
	"testing"
)

var msgGetReplies = []string{
	`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"securelog.in.s","seq":42,"hdrs":"TkFUUy8xLjANCk5hdHMtTXNnLUlkOiA3DQoNCg==","data":"eyJzZXZlcml0eSI6ImluZm8ifQ==","time":"2026-11-30T08:16:55.123456789Z"}}`,
	`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"securelog.in.s","seq":1,"data":"eA==","time":"2026-11-30T08:16:55Z"}}`,
	`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"securelog.in.s","seq":7,"time":"2026-11-30T08:16:55.1+01:00"}}`,
	`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}`,
	`{"type":"t","message":{"seq":1,"subject":"a","time":"2026-11-30T08:16:55Z"}}`,        // another key order
	`{"type":"t","message":{"subject":"a\u002eb","seq":1,"time":"2026-11-30T08:16:55Z"}}`, // an escape
	`{"type":"t","message":{"subject":"a","seq":1,"data":"!!","time":"2026-11-30T08:16:55Z"}}`,
	`{"type":"t","message":{"subject":"a","seq":18446744073709551616,"time":"2026-11-30T08:16:55Z"}}`,
	`{"type":"t","message":{"subject":"a","seq":1,"time":"yesterday"}}`,
	`{"type":"t","message":{"subject":"a","seq":1,"time":"2026-11-30T08:16:55Z"}} `,
}

// TestParseMsgGetReply: the fast path decodes what encoding/json decodes,
// and anything it does not take falls back to it (same result, same error
// or not).
func TestParseMsgGetReply(t *testing.T) {
	for i, s := range msgGetReplies {
		checkMsgGetReply(t, []byte(s))
		var fast msgGetReply
		if i < 3 && !parseMsgGetFast([]byte(s), &fast) {
			t.Errorf("reply %d: the shape nats-server writes was not taken by the fast path: %s", i, s)
		}
	}
}

func checkMsgGetReply(t *testing.T, b []byte) {
	t.Helper()
	var want, got msgGetReply
	wantErr := json.Unmarshal(b, &want)
	var fast msgGetReply
	if parseMsgGetFast(b, &fast) {
		if wantErr != nil {
			t.Fatalf("%q: fast path decoded what encoding/json refuses (%v)", b, wantErr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", b, fast.Message, want.Message)
		}
	}
	err := parseMsgGetReply(b, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json %v", b, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %+v, encoding/json %+v", b, got.Message, want.Message)
	}
}

func FuzzParseMsgGetReply(f *testing.F) {
	for _, s := range msgGetReplies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMsgGetReply(t, b) })
}
