package integration

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/wire"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func natsMsg(subject, body, id string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	m.Header.Set(wire.MsgIDHeader, id)
	return m
}
