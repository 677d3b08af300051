package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/clusto/clusto/entity"
)

// maxDepth bounds a containment walk; Insert refuses loops, so it is only
// a guard against a damaged file.
const maxDepth = 64

// Locate tells where the entity named name is, as of change at (0: now):
//
//	server1 -> connected to port 4 on switch2a
//	server1 -> in RU13 of rack101
//	rack101 -> in datacenter dc1
func (s *Store) Locate(ctx context.Context, name string, at int64) (*entity.Location, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	var loc *entity.Location
	err := s.readTx(ctx, func(q Reader) error {
		r, err := s.rowByName(ctx, q, name, at)
		if err != nil {
			return err
		}
		loc = &entity.Location{Entity: r.name, Driver: r.driver, Path: []string{r.name}, Lines: []entity.LocationLine{}}
		links, err := s.peerLinks(ctx, q, r, at)
		if err != nil {
			return err
		}
		for _, l := range links {
			loc.Lines = append(loc.Lines, entity.LocationLine{
				Entity: r.name, Relation: entity.RelConnected, Port: l.Port, PortType: l.Type,
				Peer: l.Peer, PeerDriver: l.PeerDriver, PeerPort: l.PeerPort,
				Text: fmt.Sprintf("%s -> connected to port %s on %s", r.name, l.PeerPort, l.Peer),
			})
		}
		cvis, cargs := Visible("c", at)
		evis, eargs := Visible("e", at)
		up := "SELECT e.id, e.name, e.driver, c.position, c.height FROM connections c JOIN entities e ON e.id = c.a AND " + evis +
			" WHERE c.b = ? AND c.type = 'contains' AND " + cvis
		cur := r
		for depth := 0; depth < maxDepth; depth++ {
			var p entRow
			var pos, h sql.NullInt64
			args := append(append(append([]any{}, eargs...), cur.id), cargs...)
			err := q.QueryRowContext(ctx, up, args...).Scan(&p.id, &p.name, &p.driver, &pos, &h)
			if isNoRows(err) {
				break
			}
			if err != nil {
				return entity.Internal("read containers", err)
			}
			line := entity.LocationLine{Entity: cur.name, Relation: entity.RelIn, Peer: p.name, PeerDriver: p.driver}
			switch {
			case pos.Valid && h.Valid && h.Int64 > 1:
				line.Position, line.Height = entity.N(pos.Int64), entity.N(h.Int64)
				line.Text = fmt.Sprintf("%s -> in RU%d-%d of %s", cur.name, pos.Int64, pos.Int64+h.Int64-1, p.name)
			case pos.Valid:
				line.Position = entity.N(pos.Int64)
				if h.Valid {
					line.Height = entity.N(h.Int64)
				}
				line.Text = fmt.Sprintf("%s -> in RU%d of %s", cur.name, pos.Int64, p.name)
			default:
				line.Text = fmt.Sprintf("%s -> in %s %s", cur.name, p.driver, p.name)
			}
			loc.Lines = append(loc.Lines, line)
			loc.Path = append(loc.Path, p.name)
			cur = &p
		}
		return nil
	})
	return loc, err
}

// conventionalSupplier names the built-in driver that serves each port type.
var conventionalSupplier = map[string]string{"console": "console-server", "power": "pdu"}

// Upstream lists the links from the entity's ports of type portType
// ("console", "power") to the devices that serve that port type, in port
// order, as of change at (0: now). The far end serves when its driver is
// the conventional one for the type (console-server, pdu) or declares more
// ports of the type than the entity's driver does: a server's console port
// is served by the console server it is cabled to, while a console server
// asked the same question lists nothing, because the servers on its ports
// do not serve it.
func (s *Store) Upstream(ctx context.Context, name, portType string, at int64) ([]entity.Feed, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	out := []entity.Feed{}
	err := s.readTx(ctx, func(q Reader) error {
		r, err := s.rowByName(ctx, q, name, at)
		if err != nil {
			return err
		}
		links, err := s.peerLinks(ctx, q, r, at)
		if err != nil {
			return err
		}
		own := s.portCount(r.driver, portType)
		for _, l := range links {
			if l.Type != portType {
				continue
			}
			if l.PeerDriver != conventionalSupplier[portType] && s.portCount(l.PeerDriver, portType) <= own {
				continue
			}
			out = append(out, entity.Feed{Port: l.Port, Peer: l.Peer, PeerDriver: l.PeerDriver, PeerPort: l.PeerPort})
		}
		return nil
	})
	return out, err
}

func (s *Store) portCount(driver, portType string) int {
	d, ok := s.drivers.Lookup(driver)
	if !ok {
		return 0
	}
	n := 0
	for _, p := range d.PortList() {
		if p.Type == portType {
			n++
		}
	}
	return n
}

type peerLink struct {
	entity.Link
	PeerDriver string
}

// peerLinks is links with each peer's driver, in the entity's port order.
func (s *Store) peerLinks(ctx context.Context, q Reader, r *entRow, at int64) ([]peerLink, error) {
	links, err := s.links(ctx, q, r, at)
	if err != nil {
		return nil, err
	}
	out := make([]peerLink, 0, len(links))
	drv := map[string]string{}
	for _, l := range links {
		d, ok := drv[l.Peer]
		if !ok {
			pr, err := s.rowByName(ctx, q, l.Peer, at)
			if err != nil {
				return nil, entity.Internal("read link peer", err)
			}
			d = pr.driver
			drv[l.Peer] = d
		}
		out = append(out, peerLink{Link: l, PeerDriver: d})
	}
	return out, nil
}
