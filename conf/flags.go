package conf

import (
	"fmt"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// FlagKeyAnnotation is the pflag annotation naming the key a flag sets.
// Flags defined by [BindFlags] carry it; a command may add it to its own
// flags to map them to keys whose [FlagName] differs from the flag's name.
const FlagKeyAnnotation = "massvhost.conf.key"

// commonFlags are the keys that have a flag on every command that loads a
// configuration, with the flag's name.
var commonFlags = []struct{ name, key, usage string }{
	{"listen-http", "listen.http", `plain-HTTP listener host:port ("" disables)`},
	{"listen-https", "listen.https", `TLS listener host:port ("" disables)`},
	{"sites-root", "sites.root", "directory holding one directory per tenant"},
	{"certs-dir", "certs.dir", "directory of <host>.crt/<host>.key pairs"},
	{"certs-store", "certs.store", "certificate store: files, redis or redis+files"},
	{"data-dir", "data_dir", "directory for local state (local CA)"},
	{"log-level", "log.level", "log level: debug, info, warn or error"},
	{"admin-listen", "admin.listen", `admin listener host:port ("" disables)`},
}

// BindFlags defines the common configuration flags on fs (--listen-http,
// --listen-https, --sites-root, --certs-dir, --certs-store, --data-dir,
// --log-level, --admin-listen), each annotated with the key it sets. Their
// defaults are shown in --help; after fs.Parse, pass fs in
// [LoadOptions].Flags, and only the flags the user set override the file
// and environment.
func BindFlags(fs *pflag.FlagSet) {
	def := Default()
	values := map[string]string{
		"listen.http":  def.Listen.HTTP,
		"listen.https": def.Listen.HTTPS,
		"sites.root":   def.Sites.Root,
		"certs.dir":    def.Certs.Dir,
		"certs.store":  def.Certs.Store,
		"data_dir":     def.DataDir,
		"log.level":    def.Log.Level,
		"admin.listen": def.Admin.Listen,
	}
	for _, f := range commonFlags {
		fs.String(f.name, values[f.key], f.usage+" ("+f.key+")")
		// SetAnnotation fails only for an undefined flag, defined just above.
		_ = fs.SetAnnotation(f.name, FlagKeyAnnotation, []string{f.key})
	}
}

// bindFlagSet binds each changed flag of fs that maps to a key, returning
// the flag name per key. Unchanged flags are not bound: their defaults must
// not override the file or environment.
func bindFlagSet(v *viper.Viper, fs *pflag.FlagSet) (names map[string]string, errs []error) {
	names = map[string]string{}
	if fs == nil {
		return names, nil
	}
	s := keys()
	fs.Visit(func(f *pflag.Flag) {
		key, ok := s.flags[f.Name]
		if a := f.Annotations[FlagKeyAnnotation]; len(a) > 0 {
			key, ok = a[0], true
		}
		if !ok {
			return // a command flag such as --config
		}
		if s.leaves[key] == nil {
			errs = append(errs, &keyError{origin: "flag --" + f.Name, msg: fmt.Sprintf("annotated with unknown key %q", key)})
			return
		}
		if err := v.BindPFlag(key, f); err != nil {
			errs = append(errs, &keyError{key: key, origin: "flag --" + f.Name, msg: err.Error()})
			return
		}
		names[key] = f.Name
	})
	return names, errs
}
