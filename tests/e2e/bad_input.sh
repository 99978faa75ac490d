#!/usr/bin/env bash
# Bad model files through the CLI: each must give a one-line error naming
# the file and the problem, a non-zero exit, and no crash (exit < 128).
# The files are made here from a valid fixture with shell tools.
source "$(dirname "$0")/lib.sh"
D="$T/bad_input"
rm -rf "$D" && mkdir -p "$D"
FX=tests/fixtures/mistral

# a valid GGUF to mutate
"$ZT" convert "$FX" "$D/good.gguf" --type f32 2>/dev/null || { fail convert_fixture_for_bad_input; exit 0; }
size=$(stat -c %s "$D/good.gguf")

# put_u32/put_u64 FILE OFFSET VALUE: little-endian overwrite
put_bytes() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }

head -c $((size / 2)) "$D/good.gguf" >"$D/truncated.gguf"
expect_error gguf_truncated_file 'truncated.gguf: .*(outside|truncated|end of file)' "$ZT" info "$D/truncated.gguf"

cp "$D/good.gguf" "$D/magic.gguf" && put_bytes "$D/magic.gguf" 0 'GGUX'
expect_error gguf_wrong_magic 'magic.gguf: .*(magic|not a GGUF)' "$ZT" info "$D/magic.gguf"

cp "$D/good.gguf" "$D/version.gguf" && put_bytes "$D/version.gguf" 4 "$(le32 1)"
expect_error gguf_unsupported_version 'version.gguf: .*version 1' "$ZT" info "$D/version.gguf"

# the type field of the first tensor info follows its name, n_dims (u32) and 2 dims (u64)
off=$(grep -obUa 'token_embd\.weight' "$D/good.gguf" | head -1 | cut -d: -f1)
cp "$D/good.gguf" "$D/type.gguf" && put_bytes "$D/type.gguf" $((off + 17 + 4 + 16)) "$(le32 99)"
expect_error gguf_unknown_tensor_type "type.gguf: .*token_embd\.weight.*type.*99" "$ZT" info "$D/type.gguf"

# data outside the file: cut inside the last tensor's data
head -c $((size - 64)) "$D/good.gguf" >"$D/outside.gguf"
expect_error gguf_tensor_data_outside_file 'outside.gguf: .*outside the file' "$ZT" info "$D/outside.gguf"

# absurd counts: 10^9 tensors; one array of 2^60 elements
put_hdr() { printf 'GGUF\x03\x00\x00\x00'; printf "$1"; printf "$2"; }
{ put_hdr '\x00\xca\x9a\x3b\x00\x00\x00\x00' '\x00\x00\x00\x00\x00\x00\x00\x00'; } >"$D/tensors.gguf"
expect_error gguf_billion_tensors 'tensors.gguf: .*tensor' "$ZT" info "$D/tensors.gguf"
{ put_hdr '\x00\x00\x00\x00\x00\x00\x00\x00' '\x01\x00\x00\x00\x00\x00\x00\x00'
  printf '\x01\x00\x00\x00\x00\x00\x00\x00a'   # key "a"
  printf '\x09\x00\x00\x00\x00\x00\x00\x00'    # ARRAY of u8
  printf '\x00\x00\x00\x00\x00\x00\x00\x10'    # 2^60 elements
} >"$D/array.gguf"
expect_error gguf_array_of_2_60_elements 'array.gguf: .*array' "$ZT" info "$D/array.gguf"

# HF directories
hf() { rm -rf "$D/$1" && cp -r "$FX" "$D/$1"; }
hf missing_tensor
sed -i 's/model\.norm\.weight/model.nrrm.weight/' "$D/missing_tensor/model.safetensors"
expect_error hf_missing_tensor 'missing_tensor: missing tensor output_norm\.weight' "$ZT" info "$D/missing_tensor"
hf shape
sed -i 's/"intermediate_size": 160/"intermediate_size": 192/' "$D/shape/config.json"
expect_error hf_shape_mismatch "shape: tensor 'blk\.0\.ffn_down\.weight' has shape \[160, 64\], expected \[192, 64\]" "$ZT" info "$D/shape"
hf config
head -c 100 "$FX/config.json" >"$D/config/config.json"
expect_error hf_malformed_config_json 'config\.json: .*byte' "$ZT" info "$D/config"
hf header
sed -i '0,/"dtype"/s/"dtype"/"dtype\x01/' "$D/header/model.safetensors"
expect_error hf_malformed_safetensors_header 'model\.safetensors: .*' "$ZT" info "$D/header"
hf short
head -c 4000 "$FX/model.safetensors" >"$D/short/model.safetensors"
expect_error hf_safetensors_data_outside_file 'model\.safetensors: .*' "$ZT" info "$D/short"

expect_error missing_model_file 'nope\.gguf: no such file' "$ZT" info "$D/nope.gguf"
expect_error logits_token_out_of_vocabulary 'token id 999999 is outside the vocabulary' \
    "$ZT" logits "$FX" --tokens 1,999999 -o "$D/x.bin"
expect_error logits_malformed_token_list 'comma-separated' "$ZT" logits "$FX" --tokens 1,,2 -o "$D/x.bin"
expect_error unknown_backend "unknown backend 'warp'" "$ZT" logits "$FX" --tokens 1 --backend warp -o "$D/x.bin"
