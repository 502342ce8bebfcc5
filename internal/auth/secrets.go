package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Sealer encrypts the secrets allot must be able to read back (the secret
// keys of AK/SK pairs) with AES-256-GCM under the operator's key.
type Sealer struct {
	aead        cipher.AEAD
	fingerprint string
}

// NewSealer returns a sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("auth: the secret key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("allot secret key fingerprint"))
	return &Sealer{aead: aead, fingerprint: hex.EncodeToString(m.Sum(nil))[:16]}, nil
}

// Fingerprint names the key without revealing it: every process that
// shares a database must seal with the same key, and the store records
// the fingerprint of the first.
func (s *Sealer) Fingerprint() string { return s.fingerprint }

// Seal encrypts plain, bound to context (the access key): a sealed secret
// copied to another key's row does not open.
func (s *Sealer) Seal(plain []byte, context string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("auth: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(context))
}

// Open decrypts what Seal made for the same context.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("auth: sealed secret too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errors.New("auth: the sealed secret does not open with this key")
	}
	return plain, nil
}

// LoadKey reads a key file: 64 hex digits. If the file does not exist and
// create is set, a new random key is written there with mode 0600.
func LoadKey(path string, create bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		// O_EXCL: two processes starting at once must not both write a key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadKey(path, false)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: creating the key file: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return key, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("auth: reading the key file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("auth: %s must hold 64 hex digits (32 bytes)", path)
	}
	return key, nil
}

// NewAccessKey returns a fresh access key (20 upper-case letters and
// digits, like Huawei Cloud's) and secret key (40 letters and digits).
func NewAccessKey() (ak, sk string) {
	return randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
}

func randomString(n int, alphabet string) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic("auth: no randomness: " + err.Error())
		}
		// Reject bytes past the largest multiple of len(alphabet) so that
		// every character is equally likely.
		if int(buf[0]) < 256-256%len(alphabet) {
			out[i] = alphabet[int(buf[0])%len(alphabet)]
			i++
		}
	}
	return string(out)
}
