package config

import (
	"reflect"

	"gopkg.in/yaml.v3"
)

// Redacted is what secrets print as.
const Redacted = "[redacted]"

// Redact returns a deep copy of v (a config struct or pointer to one) with
// every field tagged secret:"true" replaced by Redacted, and every DSN
// password masked, for printing and for the admin API.
func Redact[T any](v T) T {
	out := reflect.New(reflect.TypeOf(v)).Elem()
	copyRedacted(out, reflect.ValueOf(v), false)
	return out.Interface().(T)
}

func copyRedacted(dst, src reflect.Value, secret bool) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		copyRedacted(dst.Elem(), src.Elem(), secret)
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			f := src.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			copyRedacted(dst.Field(i), src.Field(i), f.Tag.Get("secret") == "true")
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := 0; i < src.Len(); i++ {
			copyRedacted(dst.Index(i), src.Index(i), secret)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMap(src.Type()))
		for _, k := range src.MapKeys() {
			nv := reflect.New(src.Type().Elem()).Elem()
			copyRedacted(nv, src.MapIndex(k), secret)
			dst.SetMapIndex(k, nv)
		}
	case reflect.String:
		if secret && src.String() != "" {
			dst.SetString(Redacted)
		} else {
			dst.SetString(RedactDSN(src.String()))
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
