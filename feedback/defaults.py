"""The survey texts a new installation starts with, in the five languages of the app.

They are data, not interface strings: an administrator edits them afterwards in
Admin → Survey templates, so they are stored in the database
(``SurveyTemplateText``) and not in the translation catalogues.
"""

from __future__ import annotations

DEFAULT_TEMPLATE_NAME = "Customer satisfaction"

# language -> (intro, CSAT question, NPS question, free-text question, contact question)
DEFAULT_TEXTS: dict[str, tuple[str, str, str, str, str]] = {
    "en": (
        "Thank you for your business. Two quick questions help us serve you better.",
        "How satisfied are you with our service?",
        "How likely are you to recommend us to a friend or colleague?",
        "Anything you would like to tell us?",
        "May we contact you about your answer?",
    ),
    "pt-br": (
        "Obrigado pela preferência. Duas perguntas rápidas nos ajudam a atendê-lo melhor.",
        "Qual é o seu nível de satisfação com o nosso atendimento?",
        "Qual a probabilidade de você nos recomendar a um amigo ou colega?",
        "Há algo que gostaria de nos dizer?",
        "Podemos entrar em contato sobre a sua resposta?",
    ),
    "sv": (
        "Tack för att du valde oss. Två snabba frågor hjälper oss att bli bättre.",
        "Hur nöjd är du med vår service?",
        "Hur troligt är det att du skulle rekommendera oss till en vän eller kollega?",
        "Är det något du vill berätta för oss?",
        "Får vi kontakta dig om ditt svar?",
    ),
    "it": (
        "Grazie per averci scelto. Due domande veloci ci aiutano a servirla meglio.",
        "Quanto è soddisfatto del nostro servizio?",
        "Quanto è probabile che ci consigli a un amico o a un collega?",
        "C'è qualcosa che vorrebbe dirci?",
        "Possiamo contattarla in merito alla sua risposta?",
    ),
    "ru": (
        "Спасибо, что выбрали нас. Два коротких вопроса помогут нам работать лучше.",
        "Насколько вы довольны нашим обслуживанием?",
        "Насколько вероятно, что вы порекомендуете нас другу или коллеге?",
        "Хотите что-нибудь нам сказать?",
        "Можно ли связаться с вами по поводу вашего ответа?",  # noqa: RUF001 - Russian
    ),
}
