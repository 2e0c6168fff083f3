package config

import (
	"reflect"

	"gopkg.in/yaml.v3"
)

// Redacted is what secrets print as.
const Redacted = "[redacted]"

// Redact returns a deep copy of v (a config struct or pointer to one) for
// printing and for the admin API: every field tagged secret:"true" is
// replaced by Redacted; a field tagged dsn:"true" is masked by RedactDSN
// for the driver named by the nearest enclosing field tagged
// driver:"<name>" (redacted whole when there is none); any other string
// that is a URL has its password masked.
func Redact[T any](v T) T {
	out := reflect.New(reflect.TypeOf(v)).Elem()
	copyRedacted(out, reflect.ValueOf(v), redactCtx{})
	return out.Interface().(T)
}

// redactCtx is what the walk knows about the value it is copying.
type redactCtx struct {
	secret bool   // the field is tagged secret
	dsn    bool   // the field is tagged dsn
	driver string // from the nearest enclosing driver tag
}

func copyRedacted(dst, src reflect.Value, rc redactCtx) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		copyRedacted(dst.Elem(), src.Elem(), rc)
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			f := src.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fc := redactCtx{driver: rc.driver, secret: f.Tag.Get("secret") == "true", dsn: f.Tag.Get("dsn") == "true"}
			if d, ok := f.Tag.Lookup("driver"); ok {
				fc.driver = d
			}
			copyRedacted(dst.Field(i), src.Field(i), fc)
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := 0; i < src.Len(); i++ {
			copyRedacted(dst.Index(i), src.Index(i), rc)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMap(src.Type()))
		for _, k := range src.MapKeys() {
			nv := reflect.New(src.Type().Elem()).Elem()
			copyRedacted(nv, src.MapIndex(k), rc)
			dst.SetMapIndex(k, nv)
		}
	case reflect.String:
		switch s := src.String(); {
		case s == "":
		case rc.secret:
			dst.SetString(Redacted)
		case rc.dsn:
			dst.SetString(RedactDSN(rc.driver, s))
		default:
			dst.SetString(redactURL(s))
		}
	default:
		dst.Set(src)
	}
}

// YAML renders a redacted copy of the file, for `sluice validate --print`.
func (f *File) YAML() string {
	b, err := yaml.Marshal(Redact(f))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
