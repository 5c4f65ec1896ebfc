
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Preloaded into nginx by ./build.sh test asan, after the sanitizer
 * runtime: dlclose() does nothing.  A worker destroys its cycle's pool on
 * the way out, and that unloads the module before LeakSanitizer's exit-time
 * scan, whose reports would then name the module's frames
 * "<unknown module>" instead of function, file and line.  Nothing else
 * changes: the master never unmaps the module either, since a reload
 * loads it into the new cycle before the old cycle lets it go.
 */


int dlclose(void *handle);


int
dlclose(void *handle)
{
    (void) handle;

    return 0;
}
