// Command trivydb writes a Trivy vulnerability database (the BoltDB file
// Trivy reads, schema version 2 as defined by github.com/aquasecurity/trivy-db)
// from a JSON document of OS-package advisories read on stdin.
//
// Usage: trivydb OUT_DIR < advisories.json
//
// Writes OUT_DIR/db/trivy.db and OUT_DIR/db/metadata.json, so OUT_DIR is the
// directory to pass to `trivy --cache-dir` (with --skip-db-update).
//
// Input:
//
//	{"advisories": [{"platform": "debian 12", "source": "openssl",
//	                 "id": "CVE-2025-1", "fixed_version": "3.0.17-1~deb12u2",
//	                 "severity": "MEDIUM", "vendor": "debian",
//	                 "title": "...", "references": ["https://..."]}],
//	 "data_sources": {"debian 12": {"ID": "debian", "Name": "...", "URL": "..."}},
//	 "vendor_severity": {"CVE-2025-1": {"ubuntu": "HIGH"}}}   (optional)
//
// Layout written (trivy-db pkg/db, pkg/types at the commit Trivy 0.59 uses):
//
//	"<platform>" / "<source package>" / "<vulnerability id>" -> types.Advisory JSON
//	    {"FixedVersion": "...", "Severity": N}   (Severity omitted when UNKNOWN)
//	"vulnerability" / "<vulnerability id>" -> types.Vulnerability JSON
//	    {"Title": ..., "VendorSeverity": {"<vendor>": N}, "References": [...]}
//	"data-source" / "<platform>" -> types.DataSource JSON {"ID", "Name", "URL"}
//
// Severity is 0=UNKNOWN 1=LOW 2=MEDIUM 3=HIGH 4=CRITICAL (types.Severity).
// Trivy's Debian detector prefers the advisory's own Severity (package-specific,
// as the real trivy-db stores Debian's urgencies) and otherwise, like the Ubuntu
// detector, takes VendorSeverity[<data source ID of the platform bucket>].
// When one vendor's advisories for an ID disagree on severity, VendorSeverity
// holds UNKNOWN if any of them is UNKNOWN (so those Debian advisories keep
// UNKNOWN; the others carry their own), else the highest; the number of such
// IDs is printed to stderr (Trivy's Ubuntu detector ignores the advisory's
// Severity, so for Ubuntu the vendor value is what it reports). "vendor_severity"
// overrides the stored value per ID and vendor (the caller knows which of the
// disagreeing advisories produce findings).
//
// Only the standard library and go.etcd.io/bbolt are used, so it builds in
// GOPATH mode from Debian's golang-github-coreos-bbolt-dev.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

const schemaVersion = 2

var severityNames = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

type inputAdvisory struct {
	Platform     string   `json:"platform"`
	Source       string   `json:"source"`
	ID           string   `json:"id"`
	FixedVersion string   `json:"fixed_version"`
	Severity     string   `json:"severity"`
	Vendor       string   `json:"vendor"`
	Title        string   `json:"title"`
	References   []string `json:"references"`
}

type dataSource struct {
	ID   string `json:",omitempty"`
	Name string `json:",omitempty"`
	URL  string `json:",omitempty"`
}

type input struct {
	Advisories  []inputAdvisory       `json:"advisories"`
	DataSources map[string]dataSource `json:"data_sources"`
	// Optional: the vendor severity to store for an ID, overriding the rule below.
	VendorSeverity map[string]map[string]string `json:"vendor_severity"`
}

// types.Advisory, the fields an OS advisory uses.
type advisory struct {
	Severity     int    `json:",omitempty"`
	FixedVersion string `json:",omitempty"`
}

// types.Vulnerability, the fields written here.
type vulnerability struct {
	Title          string         `json:",omitempty"`
	VendorSeverity map[string]int `json:",omitempty"`
	References     []string       `json:",omitempty"`
}

// types.Metadata (trivy-db pkg/metadata).
type metadata struct {
	Version      int `json:",omitempty"`
	NextUpdate   time.Time
	UpdatedAt    time.Time
	DownloadedAt time.Time
}

func severity(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	for i, n := range severityNames {
		if n == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of %v)", name, severityNames)
}

type vulnAcc struct {
	title      string
	refs       map[string]bool
	severities map[string][]int // vendor -> severities of its advisories
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: %s OUT_DIR < advisories.json", os.Args[0])
	}
	out := os.Args[1]

	var in input
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("reading the advisories JSON on stdin: %w", err)
	}

	// Validate and aggregate before touching the output.
	type key struct{ platform, source, id string }
	advs := map[key]advisory{}
	vulns := map[string]*vulnAcc{}
	platforms := map[string]bool{}
	for i, a := range in.Advisories {
		if a.Platform == "" || a.Source == "" || a.ID == "" || a.Vendor == "" {
			return fmt.Errorf("advisory %d: platform, source, id and vendor are required: %+v", i, a)
		}
		sev, err := severity(a.Severity)
		if err != nil {
			return fmt.Errorf("advisory %d (%s %s %s): %w", i, a.Platform, a.Source, a.ID, err)
		}
		k := key{a.Platform, a.Source, a.ID}
		if prev, dup := advs[k]; dup && (prev.FixedVersion != a.FixedVersion || prev.Severity != sev) {
			return fmt.Errorf("advisory %d: %s %s %s given twice with different contents", i, a.Platform, a.Source, a.ID)
		}
		advs[k] = advisory{Severity: sev, FixedVersion: a.FixedVersion}
		platforms[a.Platform] = true

		v := vulns[a.ID]
		if v == nil {
			v = &vulnAcc{refs: map[string]bool{}, severities: map[string][]int{}}
			vulns[a.ID] = v
		}
		if v.title == "" {
			v.title = a.Title
		}
		for _, r := range a.References {
			v.refs[r] = true
		}
		v.severities[a.Vendor] = append(v.severities[a.Vendor], sev)
	}
	for p := range platforms {
		ds, ok := in.DataSources[p]
		if !ok || ds.ID == "" {
			return fmt.Errorf("platform %q has no data source (data_sources[%q].ID): Trivy picks the vendor severity by it", p, p)
		}
	}

	dbDir := filepath.Join(out, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dbDir, "trivy.db.tmp")
	_ = os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o644, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("opening %s: %w", tmp, err)
	}

	conflicts := 0
	err = db.Update(func(tx *bolt.Tx) error {
		// Trivy's GetVulnerability reads the "vulnerability" bucket without a
		// nil check: it must exist even when there is no advisory.
		vb, err := tx.CreateBucketIfNotExists([]byte("vulnerability"))
		if err != nil {
			return err
		}
		dsb, err := tx.CreateBucketIfNotExists([]byte("data-source"))
		if err != nil {
			return err
		}
		keys := make([]key, 0, len(advs))
		for k := range advs {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			if a.platform != b.platform {
				return a.platform < b.platform
			}
			if a.source != b.source {
				return a.source < b.source
			}
			return a.id < b.id
		})
		for _, k := range keys {
			pb, err := tx.CreateBucketIfNotExists([]byte(k.platform))
			if err != nil {
				return fmt.Errorf("bucket %q: %w", k.platform, err)
			}
			sb, err := pb.CreateBucketIfNotExists([]byte(k.source))
			if err != nil {
				return fmt.Errorf("bucket %q/%q: %w", k.platform, k.source, err)
			}
			v, err := json.Marshal(advs[k])
			if err != nil {
				return err
			}
			if err := sb.Put([]byte(k.id), v); err != nil {
				return err
			}
		}
		for p, ds := range in.DataSources {
			v, err := json.Marshal(ds)
			if err != nil {
				return err
			}
			if err := dsb.Put([]byte(p), v); err != nil {
				return err
			}
		}
		for id, acc := range vulns {
			vuln := vulnerability{Title: acc.title, VendorSeverity: map[string]int{}}
			for vendor, sevs := range acc.severities {
				chosen, unknown, differ := 0, false, false
				for _, s := range sevs {
					if s != sevs[0] {
						differ = true
					}
					if s == 0 {
						unknown = true
					}
					if s > chosen {
						chosen = s
					}
				}
				if differ {
					conflicts++
					if unknown {
						chosen = 0
					}
				}
				if name, ok := in.VendorSeverity[id][vendor]; ok {
					if chosen, err = severity(name); err != nil {
						return fmt.Errorf("vendor_severity[%q][%q]: %w", id, vendor, err)
					}
				}
				vuln.VendorSeverity[vendor] = chosen
			}
			for r := range acc.refs {
				vuln.References = append(vuln.References, r)
			}
			sort.Strings(vuln.References)
			v, err := json.Marshal(vuln)
			if err != nil {
				return err
			}
			if err := vb.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dbDir, "trivy.db")); err != nil {
		return err
	}

	now := time.Now().UTC()
	meta := metadata{
		Version: schemaVersion,
		// Far ahead, so that even without --skip-db-update Trivy keeps this DB.
		NextUpdate:   now.AddDate(10, 0, 0),
		UpdatedAt:    now,
		DownloadedAt: now,
	}
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	mtmp := filepath.Join(dbDir, "metadata.json.tmp")
	if err := os.WriteFile(mtmp, append(mb, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(mtmp, filepath.Join(dbDir, "metadata.json")); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "trivydb: wrote %s: %d platforms, %d advisories, %d vulnerabilities, %d with per-vendor severity conflicts\n",
		filepath.Join(dbDir, "trivy.db"), len(platforms), len(advs), len(vulns), conflicts)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trivydb:", err)
		os.Exit(1)
	}
}
