package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/clusto/clusto/entity"
)

// Resolve lists every current entity that term names: an entity name, an IP
// address held in an attribute of type ip, a MAC address in a `mac`
// attribute (in any of the usual spellings: 00:1a:2b:3c:4d:5e,
// 00-1A-2B-3C-4D-5E, 001a.2b3c.4d5e, 001a2b3c4d5e) or a serial number in a
// `serial` attribute (exact, or all upper or all lower case). An entity that
// matches several ways is listed once, by the first of name, ip, mac, serial.
// The result is sorted by name.
func (s *Store) Resolve(ctx context.Context, term string) ([]entity.Match, error) {
	var out []entity.Match
	err := s.readTx(ctx, func(q Reader) error {
		var err error
		out, err = s.resolve(ctx, q, term)
		return err
	})
	return out, err
}

// Lookup resolves term to exactly one entity and reads it: not_found when
// nothing matches, conflict with the candidates (Details["candidates"], a
// []Match) when several entities do.
func (s *Store) Lookup(ctx context.Context, term string) (*entity.Entity, entity.Match, error) {
	var e *entity.Entity
	var m entity.Match
	err := s.readTx(ctx, func(q Reader) error {
		ms, err := s.resolve(ctx, q, term)
		if err != nil {
			return err
		}
		switch len(ms) {
		case 0:
			return entity.Errorf(entity.KindNotFound, "nothing matches %q (tried entity names, IP addresses, MAC addresses and serial numbers)", term)
		case 1:
			m = ms[0]
			e, err = s.load(ctx, q, m.Name, 0)
			return err
		}
		names := make([]string, len(ms))
		for i, c := range ms {
			names[i] = fmt.Sprintf("%s (%s)", c.Name, c.By)
		}
		return entity.Errorf(entity.KindConflict, "%q matches %d entities: %s", term, len(ms), strings.Join(names, ", ")).With("candidates", ms)
	})
	return e, m, err
}

func (s *Store) resolve(ctx context.Context, q Reader, term string) ([]entity.Match, error) {
	raw := term
	term = strings.TrimSpace(term)
	if term == "" {
		return nil, entity.Errorf(entity.KindInvalid, "lookup term is empty")
	}
	if len(raw) > entity.MaxLookupTermLen {
		return nil, entity.Errorf(entity.KindInvalid, "lookup term is %d bytes; the limit is %d", len(raw), entity.MaxLookupTermLen)
	}
	if !utf8.ValidString(term) || strings.ContainsRune(term, 0) {
		return nil, entity.Errorf(entity.KindInvalid, "lookup term must be UTF-8 text without NUL bytes")
	}
	found := map[string]entity.Match{}
	add := func(m entity.Match) {
		if _, ok := found[m.Name]; !ok {
			found[m.Name] = m
		}
	}
	if entity.ValidateName(term) == nil {
		var name, driver string
		err := q.QueryRowContext(ctx, "SELECT name, driver FROM entities WHERE name = ? AND until IS NULL", term).Scan(&name, &driver)
		if err == nil {
			add(entity.Match{Name: name, Driver: driver, By: entity.MatchName})
		} else if !isNoRows(err) {
			return nil, entity.Internal("look up name", err)
		}
	}
	byAttr := func(by, where string, args ...any) error {
		rows, err := q.QueryContext(ctx, `SELECT e.name, e.driver, a.key, a.value FROM attrs a
			JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.until IS NULL AND `+where+` ORDER BY e.name, a.rid`, args...)
		if err != nil {
			return entity.Internal("look up "+by, err)
		}
		defer rows.Close()
		for rows.Next() {
			m := entity.Match{By: by}
			if err := rows.Scan(&m.Name, &m.Driver, &m.Key, &m.Value); err != nil {
				return entity.Internal("look up "+by, err)
			}
			add(m)
		}
		if err := rows.Err(); err != nil {
			return entity.Internal("look up "+by, err)
		}
		return nil
	}
	if a, err := netip.ParseAddr(term); err == nil && a.Zone() == "" {
		b := a.Unmap().As16()
		if err := byAttr(entity.MatchIP, "a.ip = ? AND a.type = 'ip'", b[:]); err != nil {
			return nil, err
		}
	}
	if spellings := macSpellings(term); len(spellings) > 0 {
		args := []any{}
		for _, sp := range spellings {
			args = append(args, sp)
		}
		if err := byAttr(entity.MatchMAC, "a.key = 'mac' AND a.value IN ("+placeholders(len(args))+")", args...); err != nil {
			return nil, err
		}
	}
	serials := uniq(term, strings.ToUpper(term), strings.ToLower(term))
	args := []any{}
	for _, sp := range serials {
		args = append(args, sp)
	}
	if err := byAttr(entity.MatchSerial, "a.key = 'serial' AND a.value IN ("+placeholders(len(args))+")", args...); err != nil {
		return nil, err
	}
	out := make([]entity.Match, 0, len(found))
	for _, m := range found {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// macSpellings returns the ways a MAC address is commonly written, when
// term is one; nil otherwise.
func macSpellings(term string) []string {
	var hw net.HardwareAddr
	if len(term) == 12 {
		if b, err := hex.DecodeString(term); err == nil {
			hw = b
		}
	}
	if hw == nil {
		b, err := net.ParseMAC(term)
		if err != nil {
			return nil
		}
		hw = b
	}
	h := hex.EncodeToString(hw)
	var pairs, quads []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	for i := 0; i < len(h); i += 4 {
		quads = append(quads, h[i:min(i+4, len(h))])
	}
	var out []string
	for _, f := range []func(string) string{strings.ToLower, strings.ToUpper} {
		out = append(out,
			f(strings.Join(pairs, ":")),
			f(strings.Join(pairs, "-")),
			f(strings.Join(quads, ".")),
			f(h))
	}
	return uniq(out...)
}

func uniq(ss ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
