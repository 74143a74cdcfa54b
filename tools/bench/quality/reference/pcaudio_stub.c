/* A stand-in libpcaudio.so.0 for carrying espeak-ng to a machine without audio libraries (the GPU
 * device), built by gpu_bundle.py pack: `gcc -shared -fPIC -Wl,-soname,libpcaudio.so.0`.
 *
 * libespeak-ng.so.1 links libpcaudio (which links ALSA and PulseAudio) only to play sound; with
 * --stdout, as speech_corpus.py runs it, espeak-ng never opens an audio device (its
 * espeak_ng_InitializeOutput calls create_audio_device_object only for ENOUTPUT_MODE_SPEAK_AUDIO).
 * These are pcaudio's eight entry points, each failing: the dynamic loader is satisfied and
 * nothing can play. The synthesised samples do not pass through here. */
#include <stddef.h>
#include <stdint.h>

struct audio_object;

struct audio_object *create_audio_device_object(const char *device, const char *application_name, const char *description) {
  (void)device; (void)application_name; (void)description;
  return NULL;
}
int audio_object_open(struct audio_object *object, int format, uint32_t rate, uint8_t channels) {
  (void)object; (void)format; (void)rate; (void)channels;
  return -1;
}
void audio_object_close(struct audio_object *object) { (void)object; }
void audio_object_destroy(struct audio_object *object) { (void)object; }
int audio_object_write(struct audio_object *object, const void *data, size_t bytes) {
  (void)object; (void)data; (void)bytes;
  return -1;
}
int audio_object_drain(struct audio_object *object) { (void)object; return -1; }
int audio_object_flush(struct audio_object *object) { (void)object; return -1; }
const char *audio_object_strerror(struct audio_object *object, int error) {
  (void)object; (void)error;
  return "no audio device (pcaudio stub: espeak-ng runs with --stdout only)";
}
