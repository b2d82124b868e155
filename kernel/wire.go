package kernel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"
)

// ProtocolVersion is the Jupyter messaging protocol version this kernel speaks.
const ProtocolVersion = "5.3"

// delimiter separates the ZeroMQ routing identities from the message proper.
var delimiter = []byte("<IDS|MSG>")

// Header is a Jupyter message header.
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// Message is one Jupyter message, decoded from (or to be encoded into) ZeroMQ frames.
// Parent is kept as raw JSON so that replies echo the request header byte for byte.
type Message struct {
	Identities [][]byte
	Header     Header
	RawHeader  json.RawMessage // the header as received, echoed as the parent of replies
	Parent     json.RawMessage
	Metadata   map[string]any
	Content    json.RawMessage
	Buffers    [][]byte
}

// Signer signs and verifies messages with HMAC-SHA256; a nil key disables signing,
// as the protocol allows for an empty key in the connection file.
type Signer struct {
	key []byte
}

// NewSigner returns a signer for the scheme and key of a connection file.
func NewSigner(scheme string, key []byte) (*Signer, error) {
	if len(key) > 0 && scheme != "" && scheme != "hmac-sha256" {
		return nil, fmt.Errorf("unsupported signature scheme %q (only hmac-sha256)", scheme)
	}
	return &Signer{key: key}, nil
}

func (s *Signer) mac() hash.Hash { return hmac.New(sha256.New, s.key) }

// Sign returns the hex signature of the four JSON parts.
func (s *Signer) Sign(parts ...[]byte) []byte {
	if len(s.key) == 0 {
		return nil
	}
	m := s.mac()
	for _, p := range parts {
		m.Write(p)
	}
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// ErrBadSignature is returned by Decode for a message whose HMAC does not match.
var ErrBadSignature = errors.New("invalid message signature")

// Decode parses the frames of a message received on a ROUTER (or SUB) socket and
// checks its signature. Errors describe what was wrong; the caller logs and drops.
func (s *Signer) Decode(frames [][]byte) (*Message, error) {
	i := 0
	for i < len(frames) && !bytes.Equal(frames[i], delimiter) {
		i++
	}
	if i == len(frames) {
		return nil, errors.New("malformed message: no <IDS|MSG> delimiter")
	}
	rest := frames[i+1:]
	if len(rest) < 5 {
		return nil, fmt.Errorf("malformed message: %d frames after the delimiter, want at least 5", len(rest))
	}
	if len(s.key) > 0 {
		want := s.Sign(rest[1], rest[2], rest[3], rest[4])
		if !hmac.Equal(want, rest[0]) {
			return nil, ErrBadSignature
		}
	}
	m := &Message{Identities: frames[:i], RawHeader: rest[1], Parent: rest[2], Content: rest[4]}
	if err := json.Unmarshal(rest[1], &m.Header); err != nil {
		return nil, fmt.Errorf("malformed message header: %v", err)
	}
	if m.Header.MsgType == "" {
		return nil, errors.New("malformed message: header has no msg_type")
	}
	if !json.Valid(m.Parent) || !json.Valid(m.Content) {
		return nil, fmt.Errorf("malformed %s: parent header or content is not JSON", m.Header.MsgType)
	}
	if err := json.Unmarshal(rest[3], &m.Metadata); err != nil {
		return nil, fmt.Errorf("malformed %s metadata: %v", m.Header.MsgType, err)
	}
	for _, b := range rest[5:] {
		m.Buffers = append(m.Buffers, b)
	}
	return m, nil
}

// Encode returns the signed frames of m.
func (s *Signer) Encode(m *Message) ([][]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, err
	}
	parent := []byte(m.Parent)
	if len(parent) == 0 {
		parent = []byte("{}")
	}
	metadata := []byte("{}")
	if len(m.Metadata) > 0 {
		if metadata, err = json.Marshal(m.Metadata); err != nil {
			return nil, err
		}
	}
	content := []byte(m.Content)
	if len(content) == 0 {
		content = []byte("{}")
	}
	frames := make([][]byte, 0, len(m.Identities)+6+len(m.Buffers))
	frames = append(frames, m.Identities...)
	frames = append(frames, delimiter, s.Sign(header, parent, metadata, content), header, parent, metadata, content)
	frames = append(frames, m.Buffers...)
	return frames, nil
}

// newID returns a random UUID-like message id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// reply builds a message of type msgType answering parent (nil for none), with content
// marshalled to JSON. Replies on ROUTER sockets go back to the parent's identities.
func reply(session string, parent *Message, msgType string, content any) (*Message, error) {
	c, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", msgType, err)
	}
	m := &Message{
		Header: Header{
			MsgID:    newID(),
			Session:  session,
			Username: "kernel",
			Date:     time.Now().UTC().Format(time.RFC3339Nano),
			MsgType:  msgType,
			Version:  ProtocolVersion,
		},
		Content: c,
	}
	if parent != nil {
		m.Parent = parent.RawHeader
		if len(m.Parent) == 0 {
			m.Parent, _ = json.Marshal(parent.Header)
		}
		m.Identities = parent.Identities
	}
	return m, nil
}
