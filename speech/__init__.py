"""Local speech: recognisers (Vosk, pocketsphinx) and the prompt synthesiser (pyttsx3/espeak-ng).

Empty until the speech work lands; patients' audio will be processed only on the clinic's machines.
"""
